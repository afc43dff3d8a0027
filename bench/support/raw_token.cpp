#include "raw_token.hpp"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace otpbox::bench {
namespace {

[[noreturn]] void fail(const std::string& why) {
    std::fprintf(stderr, "bench: %s\n", why.c_str());
    std::exit(1);
}

// CK_TOKEN_INFO's label is 32 characters, blank padded (PKCS#11 v2.40 3.2).
[[nodiscard]] bool has_label(const CK_TOKEN_INFO& info, std::string_view wanted) {
    std::string_view label(reinterpret_cast<const char*>(info.label), sizeof(info.label));
    while (!label.empty() && label.back() == ' ') {
        label.remove_suffix(1);
    }
    return label == wanted;
}

}  // namespace

void check(CK_RV rv, const char* what) {
    if (rv != CKR_OK) {
        char code[32];
        std::snprintf(code, sizeof(code), "0x%08lx", static_cast<unsigned long>(rv));
        fail(std::string(what) + " failed with CK_RV " + code);
    }
}

RawSession::RawSession(CK_FUNCTION_LIST& fn, CK_SLOT_ID slot) : m_fn(&fn) {
    check(fn.C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &m_handle), "C_OpenSession");
}

RawSession::~RawSession() {
    if (m_handle != CK_INVALID_HANDLE) {
        m_fn->C_CloseSession(m_handle);
    }
}

RawSession::RawSession(RawSession&& other) noexcept
    : m_fn(other.m_fn), m_handle(std::exchange(other.m_handle, CK_INVALID_HANDLE)) {}

CK_OBJECT_HANDLE RawSession::find_key(std::string_view label) const {
    std::string name(label);
    CK_ATTRIBUTE query[] = {{CKA_LABEL, name.data(), name.size()}};
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    CK_ULONG found = 0;
    check(m_fn->C_FindObjectsInit(m_handle, query, 1), "C_FindObjectsInit");
    check(m_fn->C_FindObjects(m_handle, &key, 1, &found), "C_FindObjects");
    check(m_fn->C_FindObjectsFinal(m_handle), "C_FindObjectsFinal");
    if (found != 1) {
        fail("no key labelled " + name);
    }
    return key;
}

RawToken::RawToken(const char* module_path, std::string_view token_label) {
    m_library = ::dlopen(module_path, RTLD_NOW | RTLD_NOLOAD);
    if (m_library == nullptr) {
        fail(std::string(module_path) + " is not loaded; open the hsm layer first");
    }
    auto get_list = reinterpret_cast<CK_RV (*)(CK_FUNCTION_LIST_PTR_PTR)>(
        ::dlsym(m_library, "C_GetFunctionList"));
    if (get_list == nullptr) {
        fail(std::string(module_path) + " has no C_GetFunctionList");
    }
    check(get_list(&m_fn), "C_GetFunctionList");

    CK_ULONG count = 0;
    check(m_fn->C_GetSlotList(CK_TRUE, nullptr, &count), "C_GetSlotList");
    std::vector<CK_SLOT_ID> slots(count);
    check(m_fn->C_GetSlotList(CK_TRUE, slots.data(), &count), "C_GetSlotList");
    for (CK_ULONG index = 0; index < count; ++index) {
        CK_TOKEN_INFO info{};
        check(m_fn->C_GetTokenInfo(slots[index], &info), "C_GetTokenInfo");
        if (has_label(info, token_label)) {
            m_slot = slots[index];
            return;
        }
    }
    fail("no token labelled " + std::string(token_label));
}

RawToken::~RawToken() {
    // Drops only the reference RTLD_NOLOAD took; the layer keeps its own.
    ::dlclose(m_library);
}

}  // namespace otpbox::bench
