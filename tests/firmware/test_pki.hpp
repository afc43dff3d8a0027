#pragma once

// The test PKI of tests/firmware/pki/make_test_pki.sh: a CA, a server
// certificate for localhost, listed and unlisted clients, a revoked client
// with its CRL, and an intruder from a second CA.

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "test_support.hpp"

namespace otpbox::test {

inline const std::string kPortalSubject = "CN=otpbox-portal,O=otpbox development";
inline const std::string kMonitorSubject = "CN=otpbox-monitor,O=otpbox development";
inline const std::string kRevokedSubject = "CN=otpbox-revoked,O=otpbox development";

// Made once per test program, on first use, in a folder removed at exit.
class TestPki {
  public:
    static const TempDir& dir() {
        static const auto made = [] {
            auto pki = std::make_unique<TempDir>();
            const auto result =
                run_command("sh '" OTPBOX_SOURCE_DIR "/tests/firmware/pki/make_test_pki.sh' '" +
                            pki->path().string() + "' 2>&1");
            EXPECT_EQ(result.status, 0) << result.output;
            return pki;
        }();
        return *made;
    }
    // A file of the PKI by name ("ca.pem", "portal.crt", ...).
    static std::string file(const std::string& name) { return (dir().path() / name).string(); }
};

}  // namespace otpbox::test
