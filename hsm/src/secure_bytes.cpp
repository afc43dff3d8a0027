#include "otpbox/hsm/secure_bytes.hpp"

#include <openssl/crypto.h>

namespace otpbox::hsm {

SecureBytes::SecureBytes(std::span<const std::uint8_t> bytes)
    : m_bytes(bytes.begin(), bytes.end()) {}

SecureBytes::SecureBytes(std::string_view text)
    : m_bytes(reinterpret_cast<const std::uint8_t*>(text.data()),
              reinterpret_cast<const std::uint8_t*>(text.data()) + text.size()) {}

SecureBytes::SecureBytes(const SecureBytes& other) : m_bytes(other.m_bytes) {}

SecureBytes& SecureBytes::operator=(const SecureBytes& other) {
    if (this != &other) {
        wipe();
        m_bytes = other.m_bytes;
    }
    return *this;
}

SecureBytes::SecureBytes(SecureBytes&& other) noexcept : m_bytes(std::move(other.m_bytes)) {
    other.m_bytes.clear();
}

SecureBytes& SecureBytes::operator=(SecureBytes&& other) noexcept {
    if (this != &other) {
        wipe();
        m_bytes = std::move(other.m_bytes);
        other.m_bytes.clear();
    }
    return *this;
}

SecureBytes::~SecureBytes() {
    wipe();
}

void SecureBytes::wipe() noexcept {
    if (!m_bytes.empty()) {
        OPENSSL_cleanse(m_bytes.data(), m_bytes.size());
    }
    m_bytes.clear();
}

}  // namespace otpbox::hsm
