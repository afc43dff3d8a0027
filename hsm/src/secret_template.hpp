#pragma once

// The attribute template of a secret key: every attribute explicit, only
// the usage the key needs (PKCS#11 v2.40 4.7 and 4.8).

#include <p11-kit/pkcs11.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "otpbox/hsm/hsm.hpp"

namespace otpbox::hsm {

inline constexpr std::size_t kSecretKeyBytes = 32;

class SecretTemplate {
  public:
    SecretTemplate(std::string_view label, KeyKind kind, std::vector<std::uint8_t> id);

    // The template for C_GenerateKey (with CKA_VALUE_LEN) or C_CreateObject
    // (with value). The result points into this object and into value.
    [[nodiscard]] std::vector<CK_ATTRIBUTE> for_generate();
    [[nodiscard]] std::vector<CK_ATTRIBUTE> for_import(std::vector<std::uint8_t>& value);

    [[nodiscard]] CK_MECHANISM_TYPE generate_mechanism() const;

  private:
    [[nodiscard]] std::vector<CK_ATTRIBUTE> common();

    CK_OBJECT_CLASS m_class = CKO_SECRET_KEY;
    CK_KEY_TYPE m_key_type = CKK_GENERIC_SECRET;
    CK_BBOOL m_yes = CK_TRUE;
    CK_BBOOL m_no = CK_FALSE;
    CK_BBOOL m_sign = CK_FALSE;
    CK_BBOOL m_encrypt = CK_FALSE;
    CK_ULONG m_length = kSecretKeyBytes;
    std::string m_label;
    std::vector<std::uint8_t> m_id;
};

}  // namespace otpbox::hsm
