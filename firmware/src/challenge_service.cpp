#include "otpbox/firmware/challenge_service.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <map>
#include <sstream>

#include "otpbox/firmware/audit_log.hpp"
#include "otpbox/firmware/berlin_day.hpp"
#include "otpbox/firmware/refusal.hpp"
#include "otpbox/firmware/users.hpp"

namespace otpbox::firmware {

namespace {

constexpr int kAttemptsPerChallenge = 5;
constexpr int kSmsPerHour = 5;
constexpr int kSmsPerDay = 20;

std::string join(const std::vector<std::string>& parts, char separator) {
    std::string joined;
    for (const auto& part : parts) {
        if (!joined.empty()) {
            joined += separator;
        }
        joined += part;
    }
    return joined;
}

std::vector<std::string> split(const std::string& text, char separator) {
    std::vector<std::string> parts;
    std::stringstream stream(text);
    std::string part;
    while (std::getline(stream, part, separator)) {
        parts.push_back(part);
    }
    return parts;
}

bool equal_in_constant_time(const std::string& a, const std::string& b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// The card's values of those cells, one after the other: what the user types.
std::string right_answer(PincardService& cards, const StoredCard& card,
                         const std::vector<std::string>& cells) {
    std::string answer;
    for (const auto& cell : cells) {
        answer += cards.cell_value(card, cell);
    }
    return answer;
}

}  // namespace

struct ChallengeService::SmsToSend {
    gsm::OutgoingSms sms;
    bool due = false;
};

struct ChallengeService::VerifyOutcome {
    bool accepted = false;
    bool well_formed = true;
    bool locked = false;
    int attempts_left = 0;
    UserRow user;  // as this answer left it
};

// The values an answer is compared with, worked out in the HSM before the
// answer's transaction, so that the database is not held while the HSM
// works (three HMACs per usable card). The transaction takes them only for
// what it still finds as they were made for: the same cells and a card of
// the same serial and key version, or the same OTP record; anything else
// it works out itself.
struct ChallengeService::Expected {
    std::vector<std::string> cells;
    std::map<std::pair<std::string, unsigned>, std::string> card_values;  // serial, key version
    std::vector<std::uint8_t> code_mac;
    std::optional<bool> otp_matches;  // for code_mac
};

void ChallengeService::refuse_if_over_sms_limit(const std::string& user, TimePoint now) {
    const auto now_ms = to_millis(now);
    const struct {
        std::chrono::milliseconds window;
        int limit;
        const char* what;
    } limits[] = {{std::chrono::hours(1), kSmsPerHour, "an hour"},
                  {std::chrono::hours(24), kSmsPerDay, "a day"}};

    for (const auto& limit : limits) {
        auto rows = m_context.database.prepare(
            "SELECT count(*), min(at) FROM sms_log WHERE user_id = ? AND at > ?");
        rows.bind(1, user).bind(2, now_ms - limit.window.count());
        rows.step();
        if (rows.integer(0) >= limit.limit) {
            Refused refused(Reason::sms_limit, "at most " + std::to_string(limit.limit) + " SMS " +
                                                   limit.what + " per user");
            const auto free_at = rows.integer(1) + limit.window.count();
            refused.retry_after = std::chrono::seconds((free_at - now_ms + 999) / 1000);
            throw refused;
        }
    }
}

// A user has one OTP at a time: a newer one makes the older unexpired ones
// unusable, and their SMS, while still queued, are not sent. Otherwise a
// code read off an older SMS would still open the login, and several live
// codes would give a guesser more to hit.
void ChallengeService::supersede_open_otps(const std::string& user, TimePoint now) {
    std::vector<std::string> sms_ids;
    {
        auto open = m_context.database.prepare(
            "SELECT sms_id FROM challenges "
            "WHERE user_id = ? AND method = 'sms' AND state = 'open' AND expires_at >= ?");
        open.bind(1, user).bind(2, to_millis(now));
        while (open.step()) {
            sms_ids.push_back(open.text(0));
        }
    }
    if (sms_ids.empty()) {
        return;
    }
    m_context.database
        .prepare(
            "UPDATE challenges SET state = 'superseded' "
            "WHERE user_id = ? AND method = 'sms' AND state = 'open' AND expires_at >= ?")
        .bind(1, user)
        .bind(2, to_millis(now))
        .run();
    for (const auto& sms_id : sms_ids) {
        m_context.sms.cancel_within(m_context.database.connection(), sms_id,
                                    "superseded by a newer OTP for the same user");
    }
}

Challenge ChallengeService::sms_challenge(const UserRow& row, TimePoint now, SmsToSend& out) {
    refuse_if_over_sms_limit(row.id, now);
    supersede_open_otps(row.id, now);
    const auto number = m_context.secrets.open_phone(row.id, row.phone_sealed);
    if (!number) {
        throw Refused(Reason::unavailable, "the stored mobile number cannot be opened");
    }

    const auto& sms_config = m_context.config.sms;
    Challenge challenge;
    challenge.id = m_context.secrets.random_id();
    challenge.method = "sms";
    challenge.masked = row.phone_masked;
    challenge.sms_id = m_context.secrets.random_id();
    challenge.expires_at = now + sms_config.otp_validity;

    const auto code = m_context.secrets.random_digits(sms_config.otp_digits);
    const auto record = m_context.secrets.otp_record(challenge.id, code);
    m_context.database
        .prepare(
            "INSERT INTO challenges (id, user_id, method, code_mac, sms_id, created_at, "
            "expires_at, state) VALUES (?, ?, 'sms', ?, ?, ?, ?, 'open')")
        .bind(1, challenge.id)
        .bind(2, row.id)
        .bind_blob(3, record)
        .bind(4, challenge.sms_id)
        .bind(5, to_millis(now))
        .bind(6, to_millis(challenge.expires_at))
        .run();
    m_context.database.prepare("INSERT INTO sms_log (user_id, at) VALUES (?, ?)")
        .bind(1, row.id)
        .bind(2, to_millis(now))
        .run();

    out.sms = {challenge.sms_id, *number, fill_sms_template(sms_config.template_text, code),
               challenge.expires_at};
    out.due = true;
    return challenge;
}

Challenge ChallengeService::pincard_challenge(const std::string& user, TimePoint now) {
    const auto now_ms = to_millis(now);
    std::vector<std::string> cells;
    std::int64_t expires_at = 0;
    {
        auto current =
            m_context.database.prepare("SELECT cells, expires_at FROM cell_sets WHERE user_id = ?");
        current.bind(1, user);
        if (current.step() && current.integer(1) > now_ms) {
            cells = split(current.text(0), ',');
            expires_at = current.integer(1);
        }
    }
    if (cells.empty()) {
        // The cells stay the same until answered correctly or expired, so that
        // no one can ask again and again until a known cell comes up.
        const auto layout = m_cards.usable_cards(user).front().layout;
        const auto picks = m_context.secrets.random_distinct(
            m_context.config.pincard.challenge_cells, layout.columns * layout.rows);
        for (const auto pick : picks) {
            cells.push_back(
                PincardService::cell_name(pick % layout.columns, pick / layout.columns));
        }
        expires_at = now_ms + std::chrono::duration_cast<std::chrono::milliseconds>(
                                  m_context.config.pincard.challenge_validity)
                                  .count();
        m_context.database
            .prepare("INSERT OR REPLACE INTO cell_sets (user_id, cells, expires_at) VALUES (?,?,?)")
            .bind(1, user)
            .bind(2, join(cells, ','))
            .bind(3, expires_at)
            .run();
    }

    Challenge challenge;
    challenge.id = m_context.secrets.random_id();
    challenge.method = "pincard";
    challenge.cells = cells;
    challenge.expires_at = from_millis(expires_at);
    m_context.database
        .prepare(
            "INSERT INTO challenges (id, user_id, method, cells, created_at, expires_at, state) "
            "VALUES (?, ?, 'pincard', ?, ?, ?, 'open')")
        .bind(1, challenge.id)
        .bind(2, user)
        .bind(3, join(cells, ','))
        .bind(4, now_ms)
        .bind(5, expires_at)
        .run();
    return challenge;
}

void ChallengeService::queue(const SmsToSend& sms) {
    if (sms.due) {
        m_context.sms.enqueue_within(m_context.database.connection(), sms.sms);
        m_context.database.after_commit([&queue = m_context.sms] { queue.wake(); });
    }
}

struct ChallengeService::Made {
    Challenge challenge;
    std::string event;  // the audit log's name for it
};

Challenge ChallengeService::new_challenge(
    const std::string& user, const std::string& actor,
    const std::function<Made(const UserRow&, TimePoint, SmsToSend&)>& choose) {
    const auto now = m_context.clock.now();
    const auto pseudonym = m_context.secrets.pseudonym(user);
    SmsToSend sms;
    return m_context.database.transaction([&] {
        const auto row = load_user(m_context.database, user, now);
        refuse_if_locked(row, now);
        auto made = choose(row, now, sms);
        m_context.audit.record({actor, made.event, pseudonym, "ok"}, now);
        queue(sms);
        return std::move(made.challenge);
    });
}

Challenge ChallengeService::login(const std::string& user, const std::string& actor) {
    return new_challenge(user, actor, [&](const UserRow& row, TimePoint now, SmsToSend& sms) {
        const bool has_phone = !row.phone_sealed.empty();
        Challenge made;
        if (has_phone && row.sms_day == berlin_day(now)) {
            made = sms_challenge(row, now, sms);
        } else if (!m_cards.usable_cards(user).empty()) {
            made = pincard_challenge(user, now);
        } else if (has_phone) {
            made = sms_challenge(row, now, sms);
        } else {
            Refused refused(Reason::no_second_factor,
                            "this user has no usable PINCard and no mobile number");
            refused.fallbacks = second_factor_fallbacks();
            throw refused;
        }
        auto event = "login." + made.method;
        return Made{std::move(made), std::move(event)};
    });
}

Challenge ChallengeService::request_otp(const std::string& user, const std::string& actor) {
    return new_challenge(user, actor, [&](const UserRow& row, TimePoint now, SmsToSend& sms) {
        if (row.phone_sealed.empty()) {
            Refused refused(Reason::no_phone_to_send,
                            "no mobile number is registered for this user");
            refused.fallbacks = second_factor_fallbacks();
            throw refused;
        }
        auto made = sms_challenge(row, now, sms);
        m_context.database.prepare("UPDATE users SET sms_day = ? WHERE id = ?")
            .bind(1, berlin_day(now))
            .bind(2, user)
            .run();
        return Made{std::move(made), "otp.request"};
    });
}

bool ChallengeService::response_well_formed(const std::string& method,
                                            const std::string& response) {
    if (method == "sms") {
        return response.size() == m_context.config.sms.otp_digits &&
               std::all_of(response.begin(), response.end(),
                           [](char c) { return c >= '0' && c <= '9'; });
    }
    const auto& card = m_context.config.pincard;
    return response.size() == card.challenge_cells * card.cell_length &&
           std::all_of(response.begin(), response.end(),
                       [&](char c) { return card.alphabet.find(c) != std::string::npos; });
}

ChallengeService::Expected ChallengeService::expected_answers(const std::string& challenge_id,
                                                              const std::string& response) {
    Expected expected;
    std::string method;
    std::vector<StoredCard> cards;
    // What the transaction refuses without the HSM gets no HSM work here
    // either: a burned or expired challenge, a locked user.
    const auto now = to_millis(m_context.clock.now());
    const bool open = m_context.database.glance([&] {
        auto row = m_context.database.prepare(
            "SELECT c.user_id, c.method, c.cells, c.code_mac, c.state, c.expires_at, "
            "coalesce(u.lock_until, 0) FROM challenges c LEFT JOIN users u ON u.id = c.user_id "
            "WHERE c.id = ?");
        row.bind(1, challenge_id);
        if (!row.step() || row.text(4) != "open" || row.integer(5) < now || row.integer(6) > now) {
            return false;
        }
        method = row.text(1);
        expected.cells = split(row.text(2), ',');
        expected.code_mac = row.blob(3);
        if (method == "pincard") {
            cards = m_cards.usable_cards(row.text(0));
        }
        return true;
    });
    if (!open || !response_well_formed(method, response)) {
        return expected;  // the transaction refuses it without the HSM
    }
    if (method == "sms") {
        expected.otp_matches =
            m_context.secrets.otp_matches(challenge_id, response, expected.code_mac);
        return expected;
    }
    for (const auto& card : cards) {
        expected.card_values[{card.serial, card.key_version}] =
            right_answer(m_cards, card, expected.cells);
    }
    return expected;
}

bool ChallengeService::otp_matches(const std::string& challenge_id, const std::string& response,
                                   const std::vector<std::uint8_t>& code_mac,
                                   const Expected& expected) {
    if (expected.otp_matches && expected.code_mac == code_mac) {
        return *expected.otp_matches;
    }
    return m_context.secrets.otp_matches(challenge_id, response, code_mac);
}

bool ChallengeService::pincard_matches(const std::string& user,
                                       const std::vector<std::string>& cells,
                                       const std::string& response, TimePoint now,
                                       const Expected& expected) {
    // Every usable card is checked, so that the time taken does not tell
    // which one matched.
    std::optional<StoredCard> matched;
    for (const auto& card : m_cards.usable_cards(user)) {
        const auto known = cells == expected.cells
                               ? expected.card_values.find({card.serial, card.key_version})
                               : expected.card_values.end();
        const auto worked_out =
            known == expected.card_values.end() ? right_answer(m_cards, card, cells) : "";
        const auto& value = known == expected.card_values.end() ? worked_out : known->second;
        if (equal_in_constant_time(value, response) && !matched) {
            matched = card;
        }
    }
    if (matched) {
        m_cards.activate(*matched, now);
        m_context.database.prepare("DELETE FROM cell_sets WHERE user_id = ?").bind(1, user).run();
        // The user's other open card challenges ask the same cells: an
        // answer seen once must not open them as well.
        m_context.database
            .prepare(
                "UPDATE challenges SET state = 'used' "
                "WHERE user_id = ? AND method = 'pincard' AND state = 'open'")
            .bind(1, user)
            .run();
    }
    return matched.has_value();
}

void ChallengeService::verify(const std::string& challenge_id, const std::string& response,
                              const std::string& actor) {
    const auto expected = expected_answers(challenge_id, response);
    const auto now = m_context.clock.now();
    const auto outcome = m_context.database.transaction([&] {
        auto row = m_context.database.prepare(
            "SELECT user_id, method, cells, code_mac, expires_at, attempts, state "
            "FROM challenges WHERE id = ?");
        row.bind(1, challenge_id);
        if (!row.step()) {
            throw Refused(Reason::gone, "this challenge is unknown, used, expired or burned");
        }
        const auto user = row.text(0);
        const auto method = row.text(1);
        const auto cells = split(row.text(2), ',');
        const auto code_mac = row.blob(3);
        const auto expires_at = row.integer(4);
        const int attempts = static_cast<int>(row.integer(5));
        const auto state = row.text(6);

        auto user_row = load_user(m_context.database, user, now);
        refuse_if_locked(user_row, now);
        if (state == "superseded") {
            throw Refused(Reason::gone, "a newer OTP was requested for this user; use its code");
        }
        if (state != "open" || to_millis(now) > expires_at) {
            throw Refused(Reason::gone, "this challenge is unknown, used, expired or burned");
        }

        const auto pseudonym = m_context.secrets.pseudonym(user);
        VerifyOutcome result;
        result.well_formed = response_well_formed(method, response);
        if (result.well_formed) {
            result.accepted = method == "sms"
                                  ? otp_matches(challenge_id, response, code_mac, expected)
                                  : pincard_matches(user, cells, response, now, expected);
        }

        if (result.accepted) {
            m_context.database.prepare("UPDATE challenges SET state = 'used' WHERE id = ?")
                .bind(1, challenge_id)
                .run();
            count_right_answer(m_context.database, user_row);
            m_context.audit.record({actor, "verify." + method, pseudonym, "accepted"}, now);
            return result;
        }

        result.attempts_left = std::max(0, kAttemptsPerChallenge - (attempts + 1));
        m_context.database
            .prepare("UPDATE challenges SET attempts = attempts + 1, state = ? WHERE id = ?")
            .bind(1, result.attempts_left == 0 ? "burned" : "open")
            .bind(2, challenge_id)
            .run();
        result.locked = count_wrong_answer(m_context.database, user_row, now);
        result.user = user_row;
        m_context.audit.record({actor, "verify." + method, pseudonym, "rejected"}, now);
        if (result.locked) {
            m_context.audit.record({actor, "user.lock", pseudonym, "locked"}, now);
        }
        return result;
    });

    if (outcome.accepted) {
        return;
    }
    if (outcome.locked) {
        throw locked_refusal("too many wrong answers: the second factor is locked", outcome.user,
                             now);
    }
    if (!outcome.well_formed) {
        Refused refused(Reason::invalid_response, "the response has the wrong form or length");
        refused.attempts_left = outcome.attempts_left;
        throw refused;
    }
    Refused refused(Reason::rejected, "the response is wrong");
    refused.attempts_left = outcome.attempts_left;
    throw refused;
}

}  // namespace otpbox::firmware
