#pragma once

// The fields of an X.509 certificate that PKCS#11 keeps beside its value in a
// certificate object (PKCS#11 v2.40 4.6.3: CKA_SUBJECT, CKA_ISSUER,
// CKA_SERIAL_NUMBER, all DER), and its public key to match it to a key pair.

#include <cstdint>
#include <span>
#include <vector>

namespace otpbox::hsm {

struct CertificateFields {
    std::vector<std::uint8_t> subject;     // DER Name
    std::vector<std::uint8_t> issuer;      // DER Name
    std::vector<std::uint8_t> serial;      // DER INTEGER
    std::vector<std::uint8_t> public_key;  // DER SubjectPublicKeyInfo
};

// Throws HsmError(Fault::data) when der is not one whole certificate.
[[nodiscard]] CertificateFields certificate_fields(std::span<const std::uint8_t> der);

}  // namespace otpbox::hsm
