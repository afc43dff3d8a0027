#include "console/password.hpp"

#include <sodium.h>
#include <sys/stat.h>

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

}  // namespace otpbox::provisioning::console
