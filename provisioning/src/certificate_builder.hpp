#pragma once

// Issues one X.509 v3 certificate (RFC 5280) for a key, signed by an issuer.

#include <string>
#include <utility>
#include <vector>

#include "openssl_handles.hpp"

namespace otpbox::provisioning::detail {

struct CertificateSpec {
    std::string subject;  // RFC 2253 form
    int validity_days = 90;
    // (NID, OpenSSL configuration text), e.g. {NID_key_usage, "critical,digitalSignature"}.
    std::vector<std::pair<int, std::string>> extensions;
};

// The certificate of subject_key under spec. With no issuer the certificate
// signs itself (a root CA); otherwise issuer and issuer_key sign it.
[[nodiscard]] X509Ptr issue_certificate(const CertificateSpec& spec, EVP_PKEY* subject_key,
                                        X509* issuer, EVP_PKEY* issuer_key);

}  // namespace otpbox::provisioning::detail
