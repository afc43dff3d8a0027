#pragma once

// Shared by the hsm tests: an HsmConfig for a per-test SoftHSM2 token, and
// raw PKCS#11 access to that token for checks the public API must not offer.

#include <openssl/x509.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "otpbox/hsm/hsm.hpp"
#include "test_support.hpp"

namespace otpbox::hsm::testing {

inline constexpr unsigned long kAnyClass = ~0UL;

[[nodiscard]] HsmConfig config_for(const otpbox::test::SoftHsmToken& token);

// bytes from a hex string ("0b0b..."), for known-answer vectors.
[[nodiscard]] std::vector<std::uint8_t> from_hex(std::string_view hex);

[[nodiscard]] std::vector<std::uint8_t> to_bytes(std::string_view text);

// The sessions open with the token (CK_TOKEN_INFO ulSessionCount), through
// the module the Hsm has loaded; nullopt when the module does not say.
[[nodiscard]] std::optional<unsigned long> open_session_count(const HsmConfig& config);

// The CK_RV of C_GetAttributeValue(CKA_VALUE) on the key of that label,
// through the module the Hsm has loaded (it must still be open).
// The object is found by label, and by class unless kAnyClass.
[[nodiscard]] unsigned long read_key_value_rv(const HsmConfig& config, std::string_view label,
                                              unsigned long object_class = kAnyClass);

// CKA_ID of the object of that label and class.
[[nodiscard]] std::vector<std::uint8_t> read_key_id(const HsmConfig& config, std::string_view label,
                                                    unsigned long object_class);

struct X509NameFree {
    void operator()(X509_NAME* name) const noexcept { X509_NAME_free(name); }
};
using X509NamePtr = std::unique_ptr<X509_NAME, X509NameFree>;

// A certificate subject of those attributes in the order given, which is the
// order of the name's sequence (the broadest first, {{"O", ...}, {"CN", ...}}).
[[nodiscard]] X509NamePtr name_of(
    std::initializer_list<std::pair<const char*, const char*>> attributes);

// A second object of that label and class, copied from the one there is:
// what two processes making the same key at once leave behind.
void copy_object(const HsmConfig& config, std::string_view label, unsigned long object_class);

// An HMAC key of that label made beside the Hsm (secret keys the Hsm makes
// cannot be copied).
void create_hmac_key(const HsmConfig& config, std::string_view label);

}  // namespace otpbox::hsm::testing
