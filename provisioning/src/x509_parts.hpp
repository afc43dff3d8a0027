#pragma once

// The pieces shared by certificates and requests: keys, names, extensions, PEM.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "openssl_handles.hpp"

namespace otpbox::provisioning::detail {

// A fresh ECDSA key on P-256 (FIPS 186-4 D.1.2.3, "prime256v1" in OpenSSL).
[[nodiscard]] PkeyPtr generate_p256_key();

// "CN=otpbox-portal,O=otpbox development" as an X509_NAME: the one reader of
// subjects typed by a person (tls allow, tls csr, the development PKI). RFC
// 2253 lists the most specific attribute first, so the attributes go into
// the name in the reverse order. Escapes are taken as RFC 2253 2.4 has them
// ("CN=Meier\, Dr." and "O=\C3\84rzte"), since a portal's subject may need
// them; spaces around "," and "=" are dropped (RFC 2253 4), attribute types
// are taken in any case ("cn") or as OIDs. Throws PkiError, with a message a
// technician can act on, for an empty attribute or value, an unknown type,
// a value that is not UTF-8 or holds a control or invisible format
// character (Unicode Cc, Cf), and a value no certificate can have ("C=DEU").
// Multi-valued RDNs ("CN=a+UID=b") are not supported: "+" stays part of the
// value.
[[nodiscard]] X509NamePtr parse_subject(std::string_view subject);

// The subject as otpboxd compares it with a client certificate's
// (name_rfc2253 of parse_subject): "CN=\C3\84rzte,O=x" for "cn = Ärzte, O=x".
[[nodiscard]] std::string canonical_subject(std::string_view subject);

// Whether the name's attributes look reversed against how certificates are
// made (the country broadest, then state and locality, organisation, unit,
// and the common name last in the certificate, so first when printed):
// "O before CN" for "O=x,CN=y", nullopt when they are in that order.
[[nodiscard]] std::optional<std::string> reversed_order(const X509_NAME* name);

// The name with its attributes in the other order, as RFC 2253 prints it.
[[nodiscard]] std::string reversed_subject(const X509_NAME* name);

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
