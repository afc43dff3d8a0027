#pragma once

// The development PKI: a CA, the server's certificate, the portal's and the
// monitor's client certificates, and an intruder's from another CA. Every key
// is ECDSA P-256 made with OpenSSL 3; private keys are written mode 0600.

#include <openssl/evp.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "otpbox/provisioning/step.hpp"

namespace otpbox::provisioning {

class PkiError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

inline constexpr std::string_view kDevCaSubject = "CN=otpbox development CA,O=otpbox development";
inline constexpr std::string_view kPortalSubject = "CN=otpbox-portal,O=otpbox development";
inline constexpr std::string_view kMonitorSubject = "CN=otpbox-monitor,O=otpbox development";
// The intruder carries the portal's subject: only its CA tells it apart.
inline constexpr std::string_view kIntruderSubject = kPortalSubject;
inline constexpr std::string_view kIntruderCaSubject = "CN=intruder CA";

// all: every file; clients_only: what the portal brings to a factory-fresh
// appliance (the CA and the client certificates), no server certificate.
enum class DevPkiParts { all, clients_only };

// Creates the files of the development PKI that are missing in dir
// (ca.pem/ca.key, server, portal, monitor, intruder .crt/.key). A
// certificate whose key file is missing, or the reverse, is made again with
// both files; so is one that expires within a week or, after the CA was made
// anew, one the CA in dir did not sign. Throws PkiError on failure.
[[nodiscard]] StepReport make_dev_pki(const std::filesystem::path& dir,
                                      DevPkiParts parts = DevPkiParts::all);

// True when the certificate file is good for at least a week more and was
// signed by the development CA in dir.
[[nodiscard]] bool dev_certificate_current(const std::filesystem::path& certificate,
                                           const std::filesystem::path& dir);

// The development CA in dir signs a server certificate (CN=localhost,
// subjectAltName localhost, 127.0.0.1, ::1; 90 days) for the key of a PEM
// certificate signing request, as the portal's CA would for the appliance's
// `tls csr`. Throws PkiError when the request is not one or its signature fails.
[[nodiscard]] std::string sign_with_dev_ca(const std::filesystem::path& dir,
                                           std::string_view csr_pem);

// A PEM certificate signing request for key, signed with it. subject is in
// RFC 2253 form ("CN=localhost,O=otpbox"); sans are "DNS:name" or "IP:addr".
[[nodiscard]] std::string make_csr(EVP_PKEY* key, std::string_view subject,
                                   const std::vector<std::string>& sans);

}  // namespace otpbox::provisioning
