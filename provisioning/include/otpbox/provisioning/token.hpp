#pragma once

// Initialising the appliance's token, once.

#include <string_view>

#include "otpbox/hsm/token_admin.hpp"
#include "otpbox/provisioning/step.hpp"

namespace otpbox::provisioning {

// Initialises the token with this label, SO PIN and user PIN unless a token of
// that label exists already. Throws hsm::HsmError on failure.
[[nodiscard]] StepResult init_token(const hsm::ModuleSpec& module, std::string_view label,
                                    std::string_view so_pin, std::string_view user_pin);

}  // namespace otpbox::provisioning
