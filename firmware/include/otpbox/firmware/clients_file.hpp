#pragma once

// The API clients the technician console allows, kept apart from the
// configuration in the file `api.clients_file` names: TOML with one
// [[clients]] table (subject, role) per client. The daemon appends them to
// the configuration's own [[api.clients]] and rereads the file while it runs.

#include <filesystem>
#include <vector>

#include "otpbox/firmware/api/server.hpp"

namespace otpbox::firmware {

// The clients in file, in its order; none when the file does not exist.
// Throws ConfigError naming the file, the entry and the problem (a missing
// or empty subject, a role other than "portal" or "monitor", not TOML).
[[nodiscard]] std::vector<api::AllowedClient> read_clients_file(const std::filesystem::path& file);

// Replaces file with these clients, atomically (temporary file, fsync,
// rename), mode 0644. Throws std::invalid_argument for a client with an
// empty subject, std::system_error when the file cannot be written.
void write_clients_file(const std::filesystem::path& file,
                        const std::vector<api::AllowedClient>& clients);

}  // namespace otpbox::firmware
