#pragma once

// The user's registered mobile number: the only place an OTP may go. Kept
// sealed in the HSM's data key; shown only masked.

#include <string>

#include "otpbox/firmware/context.hpp"

namespace otpbox::firmware {

class PhoneService {
  public:
    explicit PhoneService(Context& context) : m_context(context) {}

    // Returns the masked number. Refuses invalid_number, country_not_allowed.
    std::string register_number(const std::string& user, const std::string& input,
                                const std::string& actor);
    // Refuses no_phone.
    [[nodiscard]] std::string masked(const std::string& user);
    void erase(const std::string& user, const std::string& actor);

  private:
    Context& m_context;
};

}  // namespace otpbox::firmware
