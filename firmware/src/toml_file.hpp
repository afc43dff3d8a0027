#pragma once

// A TOML file of the appliance (the configuration, the clients file) read
// whole, its syntax errors named as ConfigError.

#include <toml++/toml.h>

#include <filesystem>

namespace otpbox::firmware::detail {

// Throws ConfigError "<file>:<line>: <problem>", without the line when the
// file could not be read at all.
[[nodiscard]] toml::table parse_toml_file(const std::filesystem::path& file);

}  // namespace otpbox::firmware::detail
