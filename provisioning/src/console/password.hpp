#pragma once

// The console password: an Argon2id hash (libsodium's crypto_pwhash_str) in
// a file only root can read. The password itself is never written.

#include <chrono>
#include <filesystem>
#include <string_view>

namespace otpbox::provisioning::console {

inline constexpr std::size_t kMinPasswordLength = 10;

[[nodiscard]] bool password_set(const std::filesystem::path& file);

// Hashes and writes (mode 0600, atomically). Throws std::runtime_error.
void set_password(const std::filesystem::path& file, std::string_view password);

// False for a wrong password or an unreadable file.
[[nodiscard]] bool check_password(const std::filesystem::path& file, std::string_view password);

// Wrong passwords in a row since the last right one, kept in a file beside
// the password file ("<count> <Unix ms of the last>"), so that the delay
// after them goes on when the console restarts.
struct FailedLogins {
    unsigned count = 0;
    std::chrono::system_clock::time_point last;
};

[[nodiscard]] std::filesystem::path failed_logins_file(const std::filesystem::path& password_file);

// None for a missing or unreadable file.
[[nodiscard]] FailedLogins read_failed_logins(const std::filesystem::path& password_file);

// Writes (mode 0600, atomically). Throws std::system_error.
void write_failed_logins(const std::filesystem::path& password_file, const FailedLogins& failed);

// Removes the file. Throws std::filesystem::filesystem_error.
void forget_failed_logins(const std::filesystem::path& password_file);

}  // namespace otpbox::provisioning::console
