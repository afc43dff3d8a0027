#pragma once

#include <openssl/x509.h>

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "otpbox/firmware/api/server.hpp"

namespace otpbox::api {

// The subject in the form of `openssl x509 -noout -subject -nameopt RFC2253`
// (RFC 2253 section 2: last RDN first, bytes above 0x7f escaped), so a
// technician can copy that command's output into the allow-list.
[[nodiscard]] std::string rfc2253_subject(const X509& certificate);

// The role of an allowed subject; the comparison is exact.
[[nodiscard]] std::optional<Role> role_of(std::span<const AllowedClient> clients,
                                          std::string_view subject);

}  // namespace otpbox::api
