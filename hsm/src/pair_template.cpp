#include "pair_template.hpp"

#include "otpbox/hsm/error.hpp"

namespace otpbox::hsm {

namespace {

// DER of the OID 1.2.840.10045.3.1.7 (prime256v1), the CKA_EC_PARAMS of a
// P-256 key (PKCS#11 v2.40 2.3.3, namedCurve choice).
const std::vector<std::uint8_t> kP256Oid = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                            0xce, 0x3d, 0x03, 0x01, 0x07};

}  // namespace

PairTemplate::PairTemplate(std::string_view label, KeyKind kind, std::vector<std::uint8_t> id)
    : m_mechanism(kind == KeyKind::ec_p256 ? CKM_EC_KEY_PAIR_GEN : CKM_RSA_PKCS_KEY_PAIR_GEN),
      m_kind(kind),
      m_ec_params(kP256Oid),
      m_label(label),
      m_id(std::move(id)) {
    if (kind != KeyKind::ec_p256 && kind != KeyKind::rsa_3072) {
        throw HsmError(Fault::data, "generate_key_pair makes EC P-256 and RSA 3072 keys only");
    }
}

std::vector<CK_ATTRIBUTE> PairTemplate::public_attributes() {
    std::vector<CK_ATTRIBUTE> list = {
        {CKA_TOKEN, &m_yes, sizeof(m_yes)},  {CKA_PRIVATE, &m_no, sizeof(m_no)},
        {CKA_VERIFY, &m_yes, sizeof(m_yes)}, {CKA_ENCRYPT, &m_no, sizeof(m_no)},
        {CKA_WRAP, &m_no, sizeof(m_no)},     {CKA_LABEL, m_label.data(), m_label.size()},
        {CKA_ID, m_id.data(), m_id.size()},
    };
    if (m_kind == KeyKind::ec_p256) {
        list.push_back({CKA_EC_PARAMS, m_ec_params.data(), m_ec_params.size()});
    } else {
        list.push_back({CKA_MODULUS_BITS, &m_modulus_bits, sizeof(m_modulus_bits)});
        list.push_back({CKA_PUBLIC_EXPONENT, m_exponent.data(), m_exponent.size()});
    }
    return list;
}

std::vector<CK_ATTRIBUTE> PairTemplate::private_attributes() {
    return {
        {CKA_TOKEN, &m_yes, sizeof(m_yes)},          {CKA_PRIVATE, &m_yes, sizeof(m_yes)},
        {CKA_SENSITIVE, &m_yes, sizeof(m_yes)},      {CKA_EXTRACTABLE, &m_no, sizeof(m_no)},
        {CKA_SIGN, &m_yes, sizeof(m_yes)},           {CKA_DECRYPT, &m_no, sizeof(m_no)},
        {CKA_UNWRAP, &m_no, sizeof(m_no)},           {CKA_DERIVE, &m_no, sizeof(m_no)},
        {CKA_LABEL, m_label.data(), m_label.size()}, {CKA_ID, m_id.data(), m_id.size()},
    };
}

}  // namespace otpbox::hsm
