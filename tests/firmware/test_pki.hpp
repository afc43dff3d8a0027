#pragma once

// The test PKI of tests/firmware/pki/make_test_pki.sh: a CA, a server
// certificate for localhost, listed and unlisted clients, a revoked client
// with its CRL, and an intruder from a second CA.

#include <string>

namespace otpbox::test {

inline const std::string kPortalSubject = "CN=otpbox-portal,O=otpbox development";
inline const std::string kMonitorSubject = "CN=otpbox-monitor,O=otpbox development";
inline const std::string kRevokedSubject = "CN=otpbox-revoked,O=otpbox development";

}  // namespace otpbox::test
