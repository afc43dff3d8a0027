#pragma once

// The console password: an Argon2id hash (libsodium's crypto_pwhash_str) in
// a file only root can read. The password itself is never written.

#include <filesystem>
#include <string_view>

namespace otpbox::provisioning::console {

inline constexpr std::size_t kMinPasswordLength = 10;

[[nodiscard]] bool password_set(const std::filesystem::path& file);

// Hashes and writes (mode 0600, atomically). Throws std::runtime_error.
void set_password(const std::filesystem::path& file, std::string_view password);

// False for a wrong password or an unreadable file.
[[nodiscard]] bool check_password(const std::filesystem::path& file, std::string_view password);

}  // namespace otpbox::provisioning::console
