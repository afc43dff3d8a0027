#pragma once

// The v1 API: routes, roles, JSON in and out, and the error answers of the
// contract. Everything behind it is a service; this file only translates.

#include <boost/json/value.hpp>

#include <functional>
#include <string>

#include "otpbox/firmware/api/server.hpp"
#include "otpbox/firmware/challenge_service.hpp"
#include "otpbox/firmware/idempotency.hpp"
#include "otpbox/firmware/phone_service.hpp"
#include "otpbox/firmware/pincard_service.hpp"

namespace otpbox::firmware {

struct HealthReport {
    unsigned status = 200;  // 503 only when down
    boost::json::value body;
};

struct RouterParts {
    Context& context;
    PhoneService& phones;
    PincardService& cards;
    ChallengeService& challenges;
    Idempotency& idempotency;
    std::function<HealthReport()> health;
    std::function<std::string()> metrics;
    std::function<void(const std::string& user, const std::string& actor)> erase_user;
};

class Router {
  public:
    explicit Router(RouterParts parts) : m_parts(std::move(parts)) {}

    [[nodiscard]] api::Response handle(const api::Request& request);

  private:
    api::Response dispatch(const api::Request& request);

    RouterParts m_parts;
};

// The answer a refusal gets: status, {"error", "message", ...}, Retry-After.
[[nodiscard]] api::Response refusal_response(const class Refused& refused);

// {"error": code, "message": message} with that status.
[[nodiscard]] api::Response error_response(unsigned status, const std::string& code,
                                           const std::string& message);

}  // namespace otpbox::firmware
