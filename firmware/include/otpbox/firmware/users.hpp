#pragma once

// The per-user row: registered phone (sealed), day mode, and the lock
// counters. A user exists as soon as the portal names one.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "otpbox/firmware/context.hpp"
#include "otpbox/firmware/refusal.hpp"

namespace otpbox::firmware {

struct UserRow {
    std::string id;
    std::vector<std::uint8_t> phone_sealed;  // empty: no phone
    std::string phone_masked;
    std::string sms_day;  // Berlin day of the last OTP request, "" if none
    int wrong_streak = 0;
    std::int64_t lock_until = 0;  // Unix ms; 0 or past: not locked
    int lock_count = 0;
};

// Inside a transaction: the row, created when missing.
[[nodiscard]] UserRow load_user(Database& database, const std::string& user, TimePoint now);

// Inside a transaction: whether the user has a row, without making one.
[[nodiscard]] bool user_known(Database& database, const std::string& user);

void save_lock_state(Database& database, const UserRow& row);

// Refuses with Reason::locked (and Retry-After) while the user is locked.
void refuse_if_locked(const UserRow& row, TimePoint now);

// The refusal of a locked user: `why`, how long the lock still lasts, and
// Retry-After with the same time; never more than the lock's own length,
// also when the clock was set back since the lock began.
[[nodiscard]] Refused locked_refusal(std::string_view why, const UserRow& row, TimePoint now);

// A wrong answer: counts it, and locks the user at the 10th in a row. True
// when this answer locked the user.
bool count_wrong_answer(Database& database, UserRow& row, TimePoint now);

// A right answer: the count and the doubling start again.
void count_right_answer(Database& database, UserRow& row);

}  // namespace otpbox::firmware
