#pragma once

// A token's public key as DER SubjectPublicKeyInfo (RFC 5280 4.1.2.7).

#include <cstdint>
#include <span>
#include <vector>

namespace otpbox::hsm {

// From CKA_EC_POINT of a P-256 key: the DER OCTET STRING of PKCS#11 v2.40
// 2.3.3, or the bare uncompressed point some modules give.
[[nodiscard]] std::vector<std::uint8_t> p256_public_key_der(std::span<const std::uint8_t> ec_point);

// From CKA_MODULUS and CKA_PUBLIC_EXPONENT (big-endian).
[[nodiscard]] std::vector<std::uint8_t> rsa_public_key_der(std::span<const std::uint8_t> modulus,
                                                           std::span<const std::uint8_t> exponent);

}  // namespace otpbox::hsm
