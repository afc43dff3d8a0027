#pragma once

// The keys the configuration file may hold. A key that is not one of them
// is most often a typo, and a typo would leave its setting at the default
// without a word: such a file is refused instead.

#include <toml++/toml.h>

#include <filesystem>

namespace otpbox::firmware::detail {

// Throws ConfigError "<file>: <key>: ..." for the first key of root that no
// part of otpbox reads, or for a section that is not a table.
void refuse_unknown_keys(const std::filesystem::path& file, const toml::table& root);

}  // namespace otpbox::firmware::detail
