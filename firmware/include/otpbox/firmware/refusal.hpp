#pragma once

// A request the rules refuse. The router turns each reason into the status
// and error code of the API contract; the message is for the portal's
// developers and never holds a secret.

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace otpbox::firmware {

enum class Reason {
    invalid_request,   // 400: malformed JSON, wrong field types, bad user id
    invalid_response,  // 400: not digits or the wrong length
    forbidden,         // 403: the client's role does not allow the call
    rejected,          // 403: wrong code, attempts left
    not_found,         // 404: unknown route
    no_phone,          // 404: GET phone without a registered number
    no_phone_to_send,  // 409 with fallbacks: POST otp without a registered number
    unknown_card,      // 404
    unknown_sms,       // 404
    method_not_allowed,
    invalid_state,     // 409
    no_second_factor,  // 409 with fallbacks
    gone,              // 410
    too_large,         // 413
    unsupported_media_type,
    invalid_number,          // 422
    country_not_allowed,     // 422
    idempotency_key_reused,  // 422: the key came with another request
    locked,                  // 423
    sms_limit,               // 429
    unavailable,             // 503
};

class Refused : public std::runtime_error {
  public:
    Refused(Reason reason, const std::string& message)
        : std::runtime_error(message), m_reason(reason) {}

    [[nodiscard]] Reason reason() const { return m_reason; }

    std::optional<std::chrono::seconds> retry_after;
    std::string allow;  // method_not_allowed: the path's methods
    std::optional<int> attempts_left;
    std::vector<std::string> fallbacks;

  private:
    Reason m_reason;
};

// The fallbacks named to a user without a usable second factor.
inline std::vector<std::string> second_factor_fallbacks() {
    return {"ti_connector", "order_pincard"};
}

}  // namespace otpbox::firmware
