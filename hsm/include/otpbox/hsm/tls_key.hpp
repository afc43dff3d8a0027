#pragma once

// The TLS identity in the HSM as OpenSSL 3 sees it: an EVP_PKEY whose
// signing goes through Hsm::sign_with_private_key, and a PKCS #10 request
// signed by it. The private key never leaves the token.

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "otpbox/hsm/hsm.hpp"

namespace otpbox::hsm {

struct EvpPkeyFree {
    void operator()(EVP_PKEY* key) const noexcept { EVP_PKEY_free(key); }
};
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;

// The key pair of that label (made by Hsm::generate_key_pair with
// KeyKind::ec_p256). The key holds the Hsm for as long as it lives.
// Throws HsmError when the label names no EC P-256 pair. A signature runs on
// a thread of its own: one not made within deadline fails (and with it the
// handshake it was for), while the HSM call is left to finish there, so a
// stalled HSM never holds a server's io thread longer than that.
[[nodiscard]] EvpPkeyPtr hsm_private_key(
    std::shared_ptr<Hsm> hsm, std::string_view label,
    std::chrono::milliseconds deadline = std::chrono::milliseconds(5000));

// A certificate signing request in PEM for subject, signed with SHA-256 by
// key. The subject is made by whoever reads it from a person (provisioning's
// parse_subject), so that a subject is read one way everywhere.
[[nodiscard]] std::string make_csr_pem(EVP_PKEY& key, const X509_NAME& subject);

}  // namespace otpbox::hsm
