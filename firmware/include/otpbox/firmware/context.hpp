#pragma once

// What every service works with: the store, the HSM's secrets, the clock,
// the configuration, and the SMS queue.

#include "otpbox/firmware/clock.hpp"
#include "otpbox/firmware/config.hpp"
#include "otpbox/firmware/database.hpp"
#include "otpbox/firmware/secrets.hpp"
#include "otpbox/gsm/sms_queue.hpp"

namespace otpbox::firmware {

class AuditLog;

struct Context {
    Database& database;
    Secrets& secrets;
    const Clock& clock;
    const Config& config;
    gsm::SmsQueue& sms;
    AuditLog& audit;
};

// A portal user id: [A-Za-z0-9._@-]{1,64}.
[[nodiscard]] bool valid_user_id(std::string_view user);

}  // namespace otpbox::firmware
