#include "otpbox/provisioning/token.hpp"

namespace otpbox::provisioning {

StepResult init_token(const hsm::ModuleSpec& module, std::string_view label,
                      std::string_view so_pin, std::string_view user_pin) {
    if (hsm::token_exists(module, label)) {
        return StepResult::present;
    }
    hsm::init_token(module, label, so_pin, user_pin);
    return StepResult::created;
}

}  // namespace otpbox::provisioning
