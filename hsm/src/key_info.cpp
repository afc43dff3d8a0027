#include "key_info.hpp"

#include <array>

namespace otpbox::hsm {

namespace {

KeyKind kind_of(CK_KEY_TYPE key_type) {
    switch (key_type) {
        case CKK_AES:
            return KeyKind::aes_256;
        case CKK_EC:
            return KeyKind::ec_p256;
        case CKK_RSA:
            return KeyKind::rsa_3072;
        default:
            return KeyKind::hmac_sha256;
    }
}

}  // namespace

std::optional<KeyInfo> read_key_info(CK_FUNCTION_LIST& fn, CK_SESSION_HANDLE session,
                                     CK_OBJECT_HANDLE object) {
    CK_OBJECT_CLASS object_class = 0;
    CK_KEY_TYPE key_type = 0;
    CK_BBOOL sensitive = CK_FALSE;
    CK_BBOOL extractable = CK_TRUE;
    std::array<char, 256> label{};
    std::array<CK_BYTE, 64> id{};
    std::array<CK_ATTRIBUTE, 6> attributes{{
        {CKA_CLASS, &object_class, sizeof(object_class)},
        {CKA_KEY_TYPE, &key_type, sizeof(key_type)},
        {CKA_SENSITIVE, &sensitive, sizeof(sensitive)},
        {CKA_EXTRACTABLE, &extractable, sizeof(extractable)},
        {CKA_LABEL, label.data(), label.size()},
        {CKA_ID, id.data(), id.size()},
    }};
    // Objects lacking one of these answer CKR_ATTRIBUTE_TYPE_INVALID
    // (PKCS#11 v2.40 5.7, C_GetAttributeValue): they are not keys.
    if (fn.C_GetAttributeValue(session, object, attributes.data(), attributes.size()) != CKR_OK ||
        (object_class != CKO_SECRET_KEY && object_class != CKO_PRIVATE_KEY)) {
        return std::nullopt;
    }
    KeyInfo info;
    info.label.assign(label.data(), attributes[4].ulValueLen);
    info.id.assign(id.begin(), id.begin() + static_cast<std::ptrdiff_t>(attributes[5].ulValueLen));
    info.sensitive = sensitive == CK_TRUE;
    info.extractable = extractable == CK_TRUE;
    info.kind = kind_of(key_type);
    return info;
}

}  // namespace otpbox::hsm
