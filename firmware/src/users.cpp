#include "otpbox/firmware/users.hpp"

#include <algorithm>

#include "otpbox/firmware/refusal.hpp"

namespace otpbox::firmware {

namespace {

constexpr int kWrongAnswersBeforeLock = 10;
constexpr auto kFirstLock = std::chrono::minutes(15);
constexpr auto kLongestLock = std::chrono::hours(24);

std::chrono::milliseconds lock_duration(int lock_count) {
    auto duration = std::chrono::duration_cast<std::chrono::milliseconds>(kFirstLock);
    for (int i = 1; i < lock_count && duration < kLongestLock; ++i) {
        duration *= 2;
    }
    return std::min(duration, std::chrono::duration_cast<std::chrono::milliseconds>(kLongestLock));
}

}  // namespace

bool valid_user_id(std::string_view user) {
    // "." and ".." are path segments that clients and proxies remove
    // (RFC 3986 5.2.4): such a user could never be reached through them.
    if (user.empty() || user.size() > 64 || user == "." || user == "..") {
        return false;
    }
    return std::all_of(user.begin(), user.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '@' || c == '-';
    });
}

UserRow load_user(Database& database, const std::string& user, TimePoint now) {
    database.prepare("INSERT OR IGNORE INTO users (id, created_at) VALUES (?, ?)")
        .bind(1, user)
        .bind(2, to_millis(now))
        .run();
    auto row = database.prepare(
        "SELECT phone_sealed, phone_masked, sms_day, wrong_streak, lock_until, lock_count "
        "FROM users WHERE id = ?");
    row.bind(1, user);
    if (!row.step()) {
        throw DatabaseError("user row vanished");
    }
    UserRow result;
    result.id = user;
    result.phone_sealed = row.blob(0);
    result.phone_masked = row.text(1);
    result.sms_day = row.text(2);
    result.wrong_streak = static_cast<int>(row.integer(3));
    result.lock_until = row.integer(4);
    result.lock_count = static_cast<int>(row.integer(5));
    return result;
}

bool user_known(Database& database, const std::string& user) {
    auto row = database.prepare("SELECT 1 FROM users WHERE id = ?");
    row.bind(1, user);
    return row.step();
}

void save_lock_state(Database& database, const UserRow& row) {
    database
        .prepare("UPDATE users SET wrong_streak = ?, lock_until = ?, lock_count = ? WHERE id = ?")
        .bind(1, row.wrong_streak)
        .bind(2, row.lock_until)
        .bind(3, row.lock_count)
        .bind(4, row.id)
        .run();
}

void refuse_if_locked(const UserRow& row, TimePoint now) {
    const auto now_ms = to_millis(now);
    if (row.lock_until > now_ms) {
        throw locked_refusal("the second factor of this user is locked", row, now);
    }
}

Refused locked_refusal(std::string_view why, const UserRow& row, TimePoint now) {
    // A clock set back since the lock began leaves more than the lock's own
    // length until lock_until: the answer names at most that length. Known
    // shortcoming: the lock itself still ends at lock_until, so a caller that
    // waits out Retry-After can be refused again.
    const auto remaining =
        std::min(row.lock_until - to_millis(now), lock_duration(row.lock_count).count());
    const auto seconds = std::max<std::int64_t>((remaining + 999) / 1000, 1);
    const auto minutes = (seconds + 59) / 60;
    Refused refused(Reason::locked, std::string(why) + " for " +
                                        (seconds < 60 ? "less than a minute"
                                                      : std::to_string(minutes) + " more minute" +
                                                            (minutes == 1 ? "" : "s")) +
                                        "; logins and answers are refused until then");
    refused.retry_after = std::chrono::seconds(seconds);
    return refused;
}

bool count_wrong_answer(Database& database, UserRow& row, TimePoint now) {
    const auto now_ms = to_millis(now);
    if (row.lock_until != 0 && row.lock_until <= now_ms) {
        // A lock has ended: the first wrong answer after it counts as 1.
        row.wrong_streak = 0;
        row.lock_until = 0;
    }
    ++row.wrong_streak;
    bool locked = false;
    if (row.wrong_streak >= kWrongAnswersBeforeLock) {
        ++row.lock_count;
        row.lock_until = now_ms + lock_duration(row.lock_count).count();
        row.wrong_streak = 0;
        locked = true;
    }
    save_lock_state(database, row);
    return locked;
}

void count_right_answer(Database& database, UserRow& row) {
    row.wrong_streak = 0;
    row.lock_count = 0;
    row.lock_until = 0;
    save_lock_state(database, row);
}

}  // namespace otpbox::firmware
