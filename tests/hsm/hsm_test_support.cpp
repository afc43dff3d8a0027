#include "hsm_test_support.hpp"

#include <stdexcept>

// The tests reach the internal module wrapper so that they share the one
// loaded module instead of initialising a second copy.
#include "../../hsm/src/module.hpp"

namespace otpbox::hsm::testing {

HsmConfig config_for(const otpbox::test::SoftHsmToken& token) {
    HsmConfig config;
    config.module_path = otpbox::test::SoftHsmToken::module_path();
    config.token_label = token.label();
    config.pin_file = token.pin_file();
    config.environment["SOFTHSM2_CONF"] = token.conf_path().string();
    config.call_timeout = std::chrono::seconds(10);
    return config;
}

std::vector<std::uint8_t> from_hex(std::string_view hex) {
    if (hex.size() % 2 != 0) {
        throw std::invalid_argument("odd hex length");
    }
    std::vector<std::uint8_t> bytes;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        bytes.push_back(
            static_cast<std::uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    }
    return bytes;
}

std::vector<std::uint8_t> to_bytes(std::string_view text) {
    return {text.begin(), text.end()};
}

namespace {

// Runs work in a session of the module the Hsm has loaded, which is closed
// afterwards; returns what work returns.
template <class Work>
auto with_session(const HsmConfig& config, CK_FLAGS flags, Work work) {
    const auto module = Module::load(config.module_path, config.environment);
    auto& api = module->api();
    const auto slot = module->find_token(config.token_label);
    if (!slot) {
        throw std::runtime_error("test token not found");
    }
    CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
    Module::check(api.C_OpenSession(*slot, flags, nullptr, nullptr, &session), "C_OpenSession");
    struct Closer {
        CK_FUNCTION_LIST& api;
        CK_SESSION_HANDLE session;
        ~Closer() { api.C_CloseSession(session); }
    } const closer{api, session};
    return work(api, session);
}

// Runs read on the object of that label (and class) in a session of the
// module the Hsm has loaded; returns what read returns.
template <class Read>
auto with_object(const HsmConfig& config, std::string_view label, unsigned long object_class,
                 Read read, CK_FLAGS flags = CKF_SERIAL_SESSION) {
    return with_session(config, flags, [&](CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session) {
        std::string name(label);
        CK_OBJECT_CLASS wanted = object_class;
        CK_ATTRIBUTE query[] = {{CKA_LABEL, name.data(), name.size()},
                                {CKA_CLASS, &wanted, sizeof(wanted)}};
        CK_OBJECT_HANDLE object = CK_INVALID_HANDLE;
        CK_ULONG count = 0;
        api.C_FindObjectsInit(session, query, object_class == kAnyClass ? 1 : 2);
        api.C_FindObjects(session, &object, 1, &count);
        api.C_FindObjectsFinal(session);
        if (count != 1) {
            throw std::runtime_error("test object not found");
        }
        return read(api, session, object);
    });
}

}  // namespace

std::optional<unsigned long> open_session_count(const HsmConfig& config) {
    const auto module = Module::load(config.module_path, config.environment);
    const auto slot = module->find_token(config.token_label);
    if (!slot) {
        throw std::runtime_error("test token not found");
    }
    CK_TOKEN_INFO info{};
    Module::check(module->api().C_GetTokenInfo(*slot, &info), "C_GetTokenInfo");
    if (info.ulSessionCount == CK_UNAVAILABLE_INFORMATION) {
        return std::nullopt;
    }
    return info.ulSessionCount;
}

unsigned long read_key_value_rv(const HsmConfig& config, std::string_view label,
                                unsigned long object_class) {
    return with_object(config, label, object_class,
                       [](CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key) {
                           std::vector<std::uint8_t> value(4096);
                           CK_ATTRIBUTE attribute{CKA_VALUE, value.data(), value.size()};
                           return api.C_GetAttributeValue(session, key, &attribute, 1);
                       });
}

std::vector<std::uint8_t> read_key_id(const HsmConfig& config, std::string_view label,
                                      unsigned long object_class) {
    return with_object(config, label, object_class,
                       [](CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key) {
                           std::vector<std::uint8_t> id(64);
                           CK_ATTRIBUTE attribute{CKA_ID, id.data(), id.size()};
                           if (api.C_GetAttributeValue(session, key, &attribute, 1) != CKR_OK) {
                               throw std::runtime_error("no CKA_ID");
                           }
                           id.resize(attribute.ulValueLen);
                           return id;
                       });
}

X509NamePtr name_of(std::initializer_list<std::pair<const char*, const char*>> attributes) {
    X509NamePtr name(X509_NAME_new());
    for (const auto& [type, value] : attributes) {
        if (!name || X509_NAME_add_entry_by_txt(name.get(), type, MBSTRING_UTF8,
                                                reinterpret_cast<const unsigned char*>(value), -1,
                                                -1, 0) != 1) {
            throw std::runtime_error(std::string("cannot make a name with ") + type);
        }
    }
    return name;
}

void copy_object(const HsmConfig& config, std::string_view label, unsigned long object_class) {
    const auto rv = with_object(
        config, label, object_class,
        [name = std::string(label)](CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session,
                                    CK_OBJECT_HANDLE object) mutable {
            // SoftHSM2 wants a template, even one that changes nothing.
            CK_ATTRIBUTE keep[] = {{CKA_LABEL, name.data(), name.size()}};
            CK_OBJECT_HANDLE copy = CK_INVALID_HANDLE;
            return api.C_CopyObject(session, object, keep, 1, &copy);
        },
        CKF_SERIAL_SESSION | CKF_RW_SESSION);
    if (rv != CKR_OK) {
        throw std::runtime_error("C_CopyObject failed: " + std::to_string(rv));
    }
}

void create_hmac_key(const HsmConfig& config, std::string_view label) {
    const auto rv = with_session(
        config, CKF_SERIAL_SESSION | CKF_RW_SESSION,
        [&](CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session) {
            std::string name(label);
            std::vector<std::uint8_t> value(32, 0x5a);
            CK_OBJECT_CLASS object_class = CKO_SECRET_KEY;
            CK_KEY_TYPE key_type = CKK_GENERIC_SECRET;
            CK_BBOOL yes = CK_TRUE;
            CK_ATTRIBUTE attributes[] = {{CKA_CLASS, &object_class, sizeof object_class},
                                         {CKA_KEY_TYPE, &key_type, sizeof key_type},
                                         {CKA_TOKEN, &yes, sizeof yes},
                                         {CKA_PRIVATE, &yes, sizeof yes},
                                         {CKA_SIGN, &yes, sizeof yes},
                                         {CKA_VERIFY, &yes, sizeof yes},
                                         {CKA_LABEL, name.data(), name.size()},
                                         {CKA_VALUE, value.data(), value.size()}};
            CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
            return api.C_CreateObject(session, attributes, std::size(attributes), &key);
        });
    Module::check(rv, "C_CreateObject");
}

}  // namespace otpbox::hsm::testing
