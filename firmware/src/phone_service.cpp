#include "otpbox/firmware/phone_service.hpp"

#include <optional>

#include "otpbox/firmware/audit_log.hpp"
#include "otpbox/firmware/refusal.hpp"
#include "otpbox/firmware/users.hpp"
#include "otpbox/gsm/phone_number.hpp"

namespace otpbox::firmware {

std::string PhoneService::register_number(const std::string& user, const std::string& input,
                                          const std::string& actor) {
    const auto e164 = gsm::normalize_number(input, m_context.config.sms.default_country);
    if (!e164) {
        throw Refused(Reason::invalid_number,
                      "not a phone number: write it with +, 00 or the 0 of its area code in "
                      "front, and at most 15 digits");
    }
    if (!gsm::country_allowed(*e164, m_context.config.sms.allowed_countries)) {
        throw Refused(Reason::country_not_allowed,
                      "SMS to this country are not allowed on this appliance");
    }
    const auto masked = gsm::mask_number(*e164);
    const auto sealed = m_context.secrets.seal_phone(user, *e164);
    const auto index = m_context.secrets.phone_index(*e164);
    const auto pseudonym = m_context.secrets.pseudonym(user);
    const auto now = m_context.clock.now();

    m_context.database.transaction([&] {
        (void)load_user(m_context.database, user, now);
        m_context.database
            .prepare(
                "UPDATE users SET phone_sealed = ?, phone_index = ?, phone_masked = ? "
                "WHERE id = ?")
            .bind_blob(1, sealed)
            .bind(2, index)
            .bind(3, masked)
            .bind(4, user)
            .run();
        m_context.audit.record({actor, "phone.register", pseudonym, "ok"}, now);
    });
    return masked;
}

// A read: it makes no user row (a GET must not grow the table).
std::string PhoneService::masked(const std::string& user) {
    auto& database = m_context.database;
    const auto masked = database.read([&]() -> std::optional<std::string> {
        auto row = database.prepare(
            "SELECT phone_masked FROM users WHERE id = ? AND phone_sealed IS NOT NULL AND "
            "length(phone_sealed) > 0");
        row.bind(1, user);
        if (!row.step()) {
            return std::nullopt;
        }
        return row.text(0);
    });
    if (!masked) {
        throw Refused(Reason::no_phone, "no mobile number is registered for this user");
    }
    return *masked;
}

void PhoneService::erase(const std::string& user, const std::string& actor) {
    const auto pseudonym = m_context.secrets.pseudonym(user);
    const auto now = m_context.clock.now();
    m_context.database.transaction([&] {
        // A user never seen has no number: the delete makes no row for one,
        // and its audit row says that nothing was there.
        if (!user_known(m_context.database, user)) {
            m_context.audit.record({actor, "phone.erase", pseudonym, "unknown"}, now);
            return;
        }
        m_context.database
            .prepare(
                "UPDATE users SET phone_sealed = NULL, phone_index = NULL, phone_masked = NULL, "
                "sms_day = NULL WHERE id = ?")
            .bind(1, user)
            .run();
        // An SMS still waiting for a modem holds the number too: it is not
        // sent after the number was erased.
        auto waiting = m_context.database.prepare(
            "SELECT sms_id FROM challenges WHERE user_id = ? AND sms_id IS NOT NULL");
        waiting.bind(1, user);
        while (waiting.step()) {
            m_context.sms.cancel_within(m_context.database.connection(), waiting.text(0),
                                        "the number was erased before the SMS was sent");
        }
        m_context.audit.record({actor, "phone.erase", pseudonym, "ok"}, now);
    });
}

}  // namespace otpbox::firmware
