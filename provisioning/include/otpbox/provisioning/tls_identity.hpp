#pragma once

// The appliance's TLS identity: an EC P-256 key pair made inside the token
// (the private key never leaves it), a certificate signing request signed by
// it, and the check that a certificate belongs to it. The console's
// `tls csr` / `tls install` and the development instance share these.

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "otpbox/hsm/hsm.hpp"
#include "otpbox/provisioning/step.hpp"

namespace otpbox::provisioning {

// Makes the pair of that label unless the token has it.
[[nodiscard]] StepResult make_tls_key(hsm::Hsm& hsm, std::string_view label);

// A PEM request for subject in RFC 2253 form ("CN=otpbox.example.net,O=Example
// GmbH,C=DE": the request names the attributes so that they print in that
// order), signed with the token's key. Throws PkiError for a subject that
// cannot be a certificate's, before the HSM is asked.
[[nodiscard]] std::string make_tls_csr(std::shared_ptr<hsm::Hsm> hsm, std::string_view label,
                                       std::string_view subject);

// True when the first certificate in the PEM text is for the token's pair.
[[nodiscard]] bool certificate_fits_key(hsm::Hsm& hsm, std::string_view label,
                                        std::string_view certificate_pem);

// Keeps the first certificate of the PEM text in the token beside the pair
// of that label (same label and CKA_ID), unless the token holds that one
// already. The daemon serves the certificate file; the copy in the token
// keeps the identity whole for the vendor's tools and a token backup.
StepResult store_tls_certificate(hsm::Hsm& hsm, std::string_view label,
                                 std::string_view certificate_pem);

// The development instance's server identity: the pair in the token, and a
// certificate for it from the development CA in pki_dir at certificate_file
// (made again when missing or for another key), also kept in the token.
[[nodiscard]] StepReport make_dev_tls_identity(std::shared_ptr<hsm::Hsm> hsm,
                                               std::string_view label,
                                               const std::filesystem::path& certificate_file,
                                               const std::filesystem::path& pki_dir);

}  // namespace otpbox::provisioning
