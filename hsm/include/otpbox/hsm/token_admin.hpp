#pragma once

// Token administration for the provisioning steps: never used by otpboxd.

#include <filesystem>
#include <map>
#include <string>
#include <string_view>

namespace otpbox::hsm {

struct ModuleSpec {
    std::filesystem::path module_path;
    std::map<std::string, std::string> environment;  // set before loading
};

// True when a token with this label is present and initialised.
[[nodiscard]] bool token_exists(const ModuleSpec& module, std::string_view label);

// Initialises the first free (uninitialised) slot's token with this label,
// the SO PIN, and the user PIN (C_InitToken, then C_InitPIN as SO).
// Throws HsmError when no free slot exists or a PIN is refused.
void init_token(const ModuleSpec& module, std::string_view label, std::string_view so_pin,
                std::string_view user_pin);

}  // namespace otpbox::hsm
