#pragma once

// Token administration for the provisioning steps: never used by otpboxd.

#include <cstddef>
#include <filesystem>
#include <limits>
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

// The PIN lengths, in bytes, a token takes (CK_TOKEN_INFO ulMinPinLen and
// ulMaxPinLen, PKCS#11 v2.40 3.2); max is unbounded when the token does not say.
struct PinLengths {
    std::size_t min = 0;
    std::size_t max = std::numeric_limits<std::size_t>::max();
};

// The PIN lengths of the token init_token would initialise. Throws HsmError
// when no free slot exists.
[[nodiscard]] PinLengths new_token_pin_lengths(const ModuleSpec& module);

// Initialises the first free (uninitialised) slot's token with this label,
// the SO PIN, and the user PIN (C_InitToken, then C_InitPIN as SO). A PIN
// outside the token's lengths is refused before any call, naming them.
// Throws HsmError when no free slot exists or a PIN is refused.
void init_token(const ModuleSpec& module, std::string_view label, std::string_view so_pin,
                std::string_view user_pin);

}  // namespace otpbox::hsm
