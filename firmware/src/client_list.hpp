#pragma once

// The tables of allowed clients (subject, role): [[api.clients]] in the
// configuration and [[clients]] in the clients file are read alike.

#include <toml++/toml.h>

#include <filesystem>
#include <string_view>
#include <vector>

#include "otpbox/firmware/api/server.hpp"

namespace otpbox::firmware::detail {

// The clients listed under key (a dotted path) in root; none when key is
// absent. Throws ConfigError "<file>: <key>[<i>].<field>: <problem>".
[[nodiscard]] std::vector<api::AllowedClient> read_client_list(const std::filesystem::path& file,
                                                               const toml::table& root,
                                                               std::string_view key);

// "portal" or "monitor", as the files spell a role.
[[nodiscard]] std::string_view role_name(api::Role role) noexcept;

}  // namespace otpbox::firmware::detail
