#pragma once

// Reading what list_keys reports about one object.

#include <p11-kit/pkcs11.h>

#include <optional>

#include "otpbox/hsm/hsm.hpp"

namespace otpbox::hsm {

// The object's label, kind, id and protection, or nullopt when it is not
// a secret or private key (public keys and certificates are not listed).
[[nodiscard]] std::optional<KeyInfo> read_key_info(CK_FUNCTION_LIST& fn, CK_SESSION_HANDLE session,
                                                   CK_OBJECT_HANDLE object);

}  // namespace otpbox::hsm
