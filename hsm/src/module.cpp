#include "module.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

#include "otpbox/hsm/error.hpp"

namespace otpbox::hsm {

namespace {

std::mutex g_registry_mutex;
std::map<std::string, std::weak_ptr<Module>> g_registry;

std::vector<CK_SLOT_ID> slots_with_tokens(CK_FUNCTION_LIST& api) {
    CK_ULONG count = 0;
    Module::check(api.C_GetSlotList(CK_TRUE, nullptr, &count), "C_GetSlotList");
    std::vector<CK_SLOT_ID> slots(count);
    Module::check(api.C_GetSlotList(CK_TRUE, slots.data(), &count), "C_GetSlotList");
    slots.resize(count);
    return slots;
}

// PKCS#11 v2.40 5.4: OS locking lets several threads use the module.
CK_RV initialize(CK_FUNCTION_LIST& functions) {
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    return functions.C_Initialize(&args);
}

}  // namespace

std::string padded_label(std::string_view label) {
    std::string padded(label.substr(0, 32));
    padded.resize(32, ' ');
    return padded;
}

void Module::check(CK_RV rv, std::string_view call) {
    if (rv != CKR_OK) {
        throw HsmError(rv, std::string(call) + " failed: " + ckr_name(rv));
    }
}

std::shared_ptr<Module> Module::load(const std::filesystem::path& path,
                                     const std::map<std::string, std::string>& environment) {
    std::lock_guard lock(g_registry_mutex);
    if (auto existing = g_registry[path.string()].lock()) {
        return existing;
    }
    for (const auto& [name, value] : environment) {
        ::setenv(name.c_str(), value.c_str(), 1);
    }

    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
        const char* why = ::dlerror();
        throw HsmError(Fault::config, "cannot load the PKCS#11 module " + path.string() + ": " +
                                          (why ? why : "unknown error"));
    }
    using GetFunctionList = CK_RV (*)(CK_FUNCTION_LIST_PTR_PTR);
    auto get_list = reinterpret_cast<GetFunctionList>(::dlsym(handle, "C_GetFunctionList"));
    CK_FUNCTION_LIST_PTR functions = nullptr;
    if (get_list == nullptr || get_list(&functions) != CKR_OK || functions == nullptr) {
        ::dlclose(handle);
        throw HsmError(Fault::config, path.string() + " is not a PKCS#11 module");
    }

    const CK_RV rv = initialize(*functions);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        ::dlclose(handle);
        throw HsmError(rv, "C_Initialize of " + path.string() + " failed: " + ckr_name(rv));
    }
    // Someone else initialised it first: then it is theirs to finalise.
    std::shared_ptr<Module> module(new Module(handle, functions, rv == CKR_OK));
    g_registry[path.string()] = module;
    return module;
}

Module::Module(void* handle, CK_FUNCTION_LIST* functions, bool finalize)
    : m_handle(handle), m_functions(functions), m_finalize(finalize) {}

// The library stays mapped after C_Finalize: a module may leave thread-local
// destructors or exit handlers behind (SoftHSM2 2.6 does), and a runner
// thread ending later, or the process's exit, would call into unmapped code.
Module::~Module() {
    if (m_finalize) {
        m_functions->C_Finalize(nullptr);
    }
}

std::optional<CK_SLOT_ID> Module::find_token(std::string_view label) const {
    const auto wanted = padded_label(label);
    for (const auto slot : slots_with_tokens(*m_functions)) {
        CK_TOKEN_INFO info{};
        if (m_functions->C_GetTokenInfo(slot, &info) != CKR_OK) {
            continue;
        }
        const std::string have(reinterpret_cast<const char*>(info.label), sizeof(info.label));
        if ((info.flags & CKF_TOKEN_INITIALIZED) != 0 && have == wanted) {
            return slot;
        }
    }
    return std::nullopt;
}

std::optional<CK_SLOT_ID> Module::find_token_reinitialising(std::string_view label) {
    try {
        return find_token(label);
    } catch (const HsmError& error) {
        if (error.code().value() != static_cast<int>(CKR_CRYPTOKI_NOT_INITIALIZED)) {
            throw;
        }
    }
    const CK_RV rv = initialize(*m_functions);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        check(rv, "C_Initialize");
    }
    return find_token(label);
}

std::vector<CK_SLOT_ID> Module::free_slots() const {
    std::vector<CK_SLOT_ID> free;
    for (const auto slot : slots_with_tokens(*m_functions)) {
        CK_TOKEN_INFO info{};
        if (m_functions->C_GetTokenInfo(slot, &info) == CKR_OK &&
            (info.flags & CKF_TOKEN_INITIALIZED) == 0) {
            free.push_back(slot);
        }
    }
    return free;
}

}  // namespace otpbox::hsm
