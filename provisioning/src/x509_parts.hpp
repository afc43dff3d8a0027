#pragma once

// The pieces shared by certificates and requests: keys, names, extensions, PEM.

#include <filesystem>
#include <string>
#include <string_view>

#include "openssl_handles.hpp"

namespace otpbox::provisioning::detail {

// A fresh ECDSA key on P-256 (FIPS 186-4 D.1.2.3, "prime256v1" in OpenSSL).
[[nodiscard]] PkeyPtr generate_p256_key();

// "CN=otpbox-portal,O=otpbox development" as an X509_NAME. RFC 2253 lists the
// most specific attribute first, so the attributes go into the name in the
// reverse order. Escapes are taken as RFC 2253 2.4 has them ("CN=Meier\, Dr."
// and "O=\C3\84rzte"), since a portal's subject may need them; multi-valued
// RDNs ("CN=a+UID=b") are not supported: "+" stays part of the value.
[[nodiscard]] X509NamePtr parse_subject(std::string_view subject);

// An extension from its OpenSSL configuration text ("critical,CA:TRUE"),
// with issuer and subject known for the key identifiers.
[[nodiscard]] X509ExtPtr make_extension(int nid, const std::string& value, X509* issuer,
                                        X509* subject);

[[nodiscard]] std::string private_key_pem(EVP_PKEY* key);
[[nodiscard]] std::string certificate_pem(X509* certificate);

// A name as RFC 2253 writes it ("CN=otpbox-portal,O=otpbox development"),
// the form the allow-list uses.
[[nodiscard]] std::string name_rfc2253(const X509_NAME* name);

[[nodiscard]] PkeyPtr read_private_key(const std::filesystem::path& path);
[[nodiscard]] X509Ptr read_certificate(const std::filesystem::path& path);

}  // namespace otpbox::provisioning::detail
