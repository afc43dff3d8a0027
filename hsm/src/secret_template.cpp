#include "secret_template.hpp"

namespace otpbox::hsm {

SecretTemplate::SecretTemplate(std::string_view label, KeyKind kind, std::vector<std::uint8_t> id)
    : m_label(label), m_id(std::move(id)) {
    if (kind == KeyKind::aes_256) {
        m_key_type = CKK_AES;
        m_encrypt = CK_TRUE;
    } else {
        m_sign = CK_TRUE;
    }
}

CK_MECHANISM_TYPE SecretTemplate::generate_mechanism() const {
    return m_key_type == CKK_AES ? CKM_AES_KEY_GEN : CKM_GENERIC_SECRET_KEY_GEN;
}

std::vector<CK_ATTRIBUTE> SecretTemplate::common() {
    return {
        {CKA_CLASS, &m_class, sizeof(m_class)},
        {CKA_KEY_TYPE, &m_key_type, sizeof(m_key_type)},
        {CKA_TOKEN, &m_yes, sizeof(m_yes)},
        {CKA_PRIVATE, &m_yes, sizeof(m_yes)},
        {CKA_SENSITIVE, &m_yes, sizeof(m_yes)},
        {CKA_EXTRACTABLE, &m_no, sizeof(m_no)},
        {CKA_MODIFIABLE, &m_no, sizeof(m_no)},
        {CKA_SIGN, &m_sign, sizeof(m_sign)},
        {CKA_VERIFY, &m_sign, sizeof(m_sign)},
        {CKA_ENCRYPT, &m_encrypt, sizeof(m_encrypt)},
        {CKA_DECRYPT, &m_encrypt, sizeof(m_encrypt)},
        {CKA_WRAP, &m_no, sizeof(m_no)},
        {CKA_UNWRAP, &m_no, sizeof(m_no)},
        {CKA_DERIVE, &m_no, sizeof(m_no)},
        {CKA_LABEL, m_label.data(), m_label.size()},
        {CKA_ID, m_id.data(), m_id.size()},
    };
}

std::vector<CK_ATTRIBUTE> SecretTemplate::for_generate() {
    auto attributes = common();
    attributes.push_back({CKA_VALUE_LEN, &m_length, sizeof(m_length)});
    return attributes;
}

std::vector<CK_ATTRIBUTE> SecretTemplate::for_import(std::vector<std::uint8_t>& value) {
    auto attributes = common();
    attributes.push_back({CKA_VALUE, value.data(), value.size()});
    return attributes;
}

}  // namespace otpbox::hsm
