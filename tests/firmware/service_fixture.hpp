#pragma once

// The firmware's services on real parts: a SoftHSM2 token with the
// appliance's keys, a SQLite file, the SMS queue, and (when a test wants SMS
// to leave) the modem simulator on a pseudo-terminal with the modem pool.
// The clock is a ManualClock, so that tests stand at the rules' edges.

#include <date/date.h>

#include <boost/json.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>

#include "otpbox/firmware/audit_log.hpp"
#include "otpbox/firmware/challenge_service.hpp"
#include "otpbox/firmware/phone_service.hpp"
#include "otpbox/firmware/pincard_service.hpp"
#include "otpbox/firmware/refusal.hpp"
#include "otpbox/gsm/modem_pool.hpp"
#include "otpbox/hsm/hsm.hpp"
#include "otpbox/hsm/key_labels.hpp"
#include "test_support.hpp"

namespace otpbox::firmware::testing {

inline const char* kActor = "CN=otpbox-portal,O=otpbox development";

inline TimePoint utc(int year, unsigned month, unsigned day, int hours, int minutes, int seconds) {
    return date::sys_days(date::year(year) / month / day) + std::chrono::hours(hours) +
           std::chrono::minutes(minutes) + std::chrono::seconds(seconds);
}

// Runs call and returns the reason it was refused with, or nullopt.
template <class Call>
std::optional<Reason> refusal_of(Call&& call) {
    try {
        call();
    } catch (const Refused& refused) {
        return refused.reason();
    }
    return std::nullopt;
}

// The fixture's token with a step that runs once, in the middle of the next
// HMAC under a key whose label starts with the armed prefix: for what may
// happen between a service's HSM work and its transaction.
class HsmWithStep final : public hsm::Hsm {
  public:
    explicit HsmWithStep(std::shared_ptr<hsm::Hsm> inner) : m_inner(std::move(inner)) {}

    void arm(std::string label_prefix, std::function<void()> step) {
        m_prefix = std::move(label_prefix);
        m_step = std::move(step);
    }

    std::vector<std::uint8_t> random_bytes(std::size_t count) override {
        return m_inner->random_bytes(count);
    }
    std::vector<std::uint8_t> hmac_sha256(std::string_view key_label,
                                          std::span<const std::uint8_t> data) override {
        if (m_step && key_label.starts_with(m_prefix)) {
            const auto step = std::move(m_step);
            m_step = nullptr;
            step();
        }
        return m_inner->hmac_sha256(key_label, data);
    }
    bool hmac_sha256_verify(std::string_view key_label, std::span<const std::uint8_t> data,
                            std::span<const std::uint8_t> mac) override {
        return m_inner->hmac_sha256_verify(key_label, data, mac);
    }
    std::vector<std::uint8_t> aes_gcm_encrypt(
        std::string_view key_label, std::span<const std::uint8_t> plaintext,
        std::span<const std::uint8_t> associated_data) override {
        return m_inner->aes_gcm_encrypt(key_label, plaintext, associated_data);
    }
    std::optional<hsm::SecureBytes> aes_gcm_decrypt(
        std::string_view key_label, std::span<const std::uint8_t> sealed,
        std::span<const std::uint8_t> associated_data) override {
        return m_inner->aes_gcm_decrypt(key_label, sealed, associated_data);
    }
    bool has_key(std::string_view label) override { return m_inner->has_key(label); }
    std::vector<hsm::KeyInfo> list_keys() override { return m_inner->list_keys(); }
    void generate_secret_key(std::string_view label, hsm::KeyKind kind) override {
        m_inner->generate_secret_key(label, kind);
    }
    void import_secret_key(std::string_view label, hsm::KeyKind kind,
                           std::span<const std::uint8_t> value) override {
        m_inner->import_secret_key(label, kind, value);
    }
    void look_for_token() override { m_inner->look_for_token(); }
    hsm::HsmHealth last_health() override { return m_health ? *m_health : m_inner->last_health(); }
    hsm::HsmHealth health() override { return m_health ? *m_health : m_inner->health(); }

    // Makes health() and last_health() report this instead of the token's own
    // state: the router asks before every call.
    void report_health(std::optional<hsm::HsmHealth> health) { m_health = std::move(health); }

  private:
    std::shared_ptr<hsm::Hsm> m_inner;
    std::optional<hsm::HsmHealth> m_health;
    std::string m_prefix;
    std::function<void()> m_step;
};

class ServiceFixture {
  public:
    explicit ServiceFixture(TimePoint start = utc(2026, 12, 4, 9, 0, 0), bool with_modem = false)
        : clock(start) {
        config.database = dir.path() / "otpbox.db";
        config.hsm.module_path = otpbox::test::SoftHsmToken::module_path();
        config.hsm.token_label = token.label();
        config.hsm.pin_file = token.pin_file();
        hsm = hsm::Hsm::open(config.hsm);
        for (const auto base : {hsm::keys::kCardKdk, hsm::keys::kOtpMac, hsm::keys::kDataIndex,
                                hsm::keys::kAuditMac}) {
            hsm->generate_secret_key(hsm::keys::versioned(base, 1), hsm::KeyKind::hmac_sha256);
        }
        hsm->generate_secret_key(hsm::keys::versioned(hsm::keys::kDataEnc, 1),
                                 hsm::KeyKind::aes_256);

        stepped = std::make_shared<HsmWithStep>(hsm);

        database = std::make_unique<Database>(config.database);
        secrets = std::make_unique<Secrets>(stepped);
        audit = std::make_unique<AuditLog>(*database, *secrets);
        queue = std::make_unique<gsm::SmsQueue>(config.database, secrets->sms_sealer(),
                                                [this] { return clock.now(); });
        context =
            std::make_unique<Context>(Context{*database, *secrets, clock, config, *queue, *audit});
        phones = std::make_unique<PhoneService>(*context);
        cards = std::make_unique<PincardService>(*context);
        challenges = std::make_unique<ChallengeService>(*context, *cards);
        if (with_modem) {
            start_modem();
        }
    }

    ~ServiceFixture() {
        if (pool) {
            pool->stop();
        }
    }

    void start_modem() {
        const auto link = dir.path() / "modem0";
        outbox = dir.path() / "outbox.jsonl";
        simulator = std::make_unique<otpbox::test::ChildProcess>(
            std::vector<std::string>{otpbox::test::program_path("otpbox-modemsim").string(),
                                     "--link", link.string(), "--outbox", outbox.string()});
        if (!otpbox::test::wait_until([&] { return std::filesystem::exists(link); },
                                      std::chrono::seconds(10))) {
            throw std::runtime_error("the modem simulator did not come up");
        }
        gsm::ModemConfig modem;
        modem.name = "modem0";
        modem.device = link;
        modem.command_timeout = std::chrono::seconds(3);
        pool = std::make_unique<gsm::ModemPool>(std::vector<gsm::ModemConfig>{modem}, *queue);
        pool->start();
    }

    // The code of the nth SMS in the outbox to that number, waiting for it.
    std::optional<std::string> sms_code(const std::string& to, std::size_t nth) {
        return otpbox::test::outbox_code(outbox, to, nth, std::chrono::seconds(20));
    }

    // The right answer to a PINCard challenge, from the issued grid.
    static std::string answer(const IssuedCard& card, const Challenge& challenge) {
        std::string response;
        for (const auto& cell : challenge.cells) {
            const auto column = static_cast<unsigned>(cell[0] - 'A');
            const auto row = static_cast<unsigned>(std::stoi(cell.substr(1)) - 1);
            response += card.grid.at(row).at(column);
        }
        return response;
    }

    // The right answer to a PINCard challenge, sent: what it was refused
    // with (nullopt when accepted), and whether a card cell was worked out
    // in the HSM for it.
    struct WatchedAnswer {
        std::optional<Reason> refusal;
        bool card_cell_worked_out = false;
    };
    WatchedAnswer send_right_answer_watching_the_card_key(const IssuedCard& card,
                                                          const Challenge& challenge) {
        WatchedAnswer watched;
        stepped->arm(std::string(hsm::keys::kCardKdk),
                     [&] { watched.card_cell_worked_out = true; });
        watched.refusal =
            refusal_of([&] { challenges->verify(challenge.id, answer(card, challenge), kActor); });
        stepped->arm({}, nullptr);
        return watched;
    }

    otpbox::test::TempDir dir;
    otpbox::test::SoftHsmToken token;
    ManualClock clock;
    Config config;
    std::shared_ptr<hsm::Hsm> hsm;
    std::shared_ptr<HsmWithStep> stepped;  // what the services use
    std::unique_ptr<Database> database;
    std::unique_ptr<Secrets> secrets;
    std::unique_ptr<AuditLog> audit;
    std::unique_ptr<gsm::SmsQueue> queue;
    std::unique_ptr<Context> context;
    std::unique_ptr<PhoneService> phones;
    std::unique_ptr<PincardService> cards;
    std::unique_ptr<ChallengeService> challenges;
    std::filesystem::path outbox;
    std::unique_ptr<otpbox::test::ChildProcess> simulator;
    std::unique_ptr<gsm::ModemPool> pool;
};

}  // namespace otpbox::firmware::testing
