#pragma once

// The API server's TLS settings from [api]: certificate, client CA, CRL,
// allow-list, and the server key: a PEM file (api.key) or the HSM's key pair
// (api.key_label), whose private half never leaves the token.

#include <openssl/evp.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "otpbox/firmware/api/server.hpp"
#include "otpbox/firmware/config.hpp"
#include "otpbox/hsm/hsm.hpp"

namespace otpbox::firmware::detail {

class TlsIdentity {
  public:
    // A handshake's signature not made within sign_deadline fails the
    // handshake instead of holding the io thread.
    TlsIdentity(std::shared_ptr<hsm::Hsm> hsm, std::chrono::milliseconds sign_deadline)
        : m_hsm(std::move(hsm)), m_sign_deadline(sign_deadline) {}

    // Throws hsm::HsmError when api.key_label names no usable key pair.
    [[nodiscard]] api::TlsConfig tls_config(const ApiConfig& api);

  private:
    [[nodiscard]] std::shared_ptr<EVP_PKEY> hsm_key(const std::string& label);

    std::shared_ptr<hsm::Hsm> m_hsm;
    std::chrono::milliseconds m_sign_deadline;
    std::string m_label;
    std::vector<std::uint8_t> m_public_key;
    std::shared_ptr<EVP_PKEY> m_key;
};

// What keeps the HSM's pair labelled label from serving as the TLS key, in
// a phrase for the "missing" log line; nullopt when an EC P-256 pair is there.
// Throws hsm::HsmError when the token cannot be asked.
[[nodiscard]] std::optional<std::string> hsm_tls_key_problem(hsm::Hsm& hsm, std::string_view label);

}  // namespace otpbox::firmware::detail
