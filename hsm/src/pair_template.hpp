#pragma once

// The attribute templates of a key pair for the TLS identity: the private
// key sensitive, not extractable, for signing only; the public key for
// verifying; both under one label and one CKA_ID (PKCS#11 v2.40 4.8, 4.9).

#include <p11-kit/pkcs11.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "otpbox/hsm/hsm.hpp"

namespace otpbox::hsm {

class PairTemplate {
  public:
    PairTemplate(std::string_view label, KeyKind kind, std::vector<std::uint8_t> id);

    [[nodiscard]] CK_MECHANISM_TYPE mechanism() const { return m_mechanism; }
    [[nodiscard]] std::vector<CK_ATTRIBUTE> public_attributes();
    [[nodiscard]] std::vector<CK_ATTRIBUTE> private_attributes();

  private:
    CK_MECHANISM_TYPE m_mechanism;
    KeyKind m_kind;
    CK_BBOOL m_yes = CK_TRUE;
    CK_BBOOL m_no = CK_FALSE;
    CK_ULONG m_modulus_bits = 3072;
    std::vector<std::uint8_t> m_exponent = {0x01, 0x00, 0x01};
    std::vector<std::uint8_t> m_ec_params;
    std::string m_label;
    std::vector<std::uint8_t> m_id;
};

}  // namespace otpbox::hsm
