#include "console/password.hpp"

#include <sodium.h>
#include <sys/stat.h>

#include <cstdint>
#include <fstream>
#include <stdexcept>
#include <string>

#include "file_io.hpp"

namespace otpbox::provisioning::console {

namespace {

void need_sodium() {
    if (sodium_init() < 0) {
        throw std::runtime_error("libsodium cannot start");
    }
}

}  // namespace

bool password_set(const std::filesystem::path& file) {
    return std::filesystem::exists(file);
}

void set_password(const std::filesystem::path& file, std::string_view password) {
    need_sodium();
    char hash[crypto_pwhash_STRBYTES] = {};
    if (crypto_pwhash_str_alg(
            hash, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
            crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) != 0) {
        throw std::runtime_error("not enough memory to hash the password");
    }
    detail::write_file_atomically(file, std::string(hash) + "\n", S_IRUSR | S_IWUSR);
}

bool check_password(const std::filesystem::path& file, std::string_view password) {
    need_sodium();
    std::ifstream in(file);
    std::string hash;
    if (!in || !std::getline(in, hash) || hash.empty()) {
        return false;
    }
    const std::string candidate(password);
    const bool good =
        crypto_pwhash_str_verify(hash.c_str(), candidate.data(), candidate.size()) == 0;
    sodium_memzero(const_cast<char*>(candidate.data()), candidate.size());
    return good;
}

std::filesystem::path failed_logins_file(const std::filesystem::path& password_file) {
    auto file = password_file;
    file += ".failed";
    return file;
}

FailedLogins read_failed_logins(const std::filesystem::path& password_file) {
    std::ifstream in(failed_logins_file(password_file));
    unsigned count = 0;
    std::int64_t last_ms = 0;
    if (!in || !(in >> count >> last_ms)) {
        return {};
    }
    return {count, std::chrono::system_clock::time_point(std::chrono::milliseconds(last_ms))};
}

void write_failed_logins(const std::filesystem::path& password_file, const FailedLogins& failed) {
    const auto last_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(failed.last.time_since_epoch());
    detail::write_file_atomically(
        failed_logins_file(password_file),
        std::to_string(failed.count) + " " + std::to_string(last_ms.count()) + "\n",
        S_IRUSR | S_IWUSR);
}

void forget_failed_logins(const std::filesystem::path& password_file) {
    std::filesystem::remove(failed_logins_file(password_file));
}

}  // namespace otpbox::provisioning::console
