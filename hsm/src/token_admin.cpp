#include "otpbox/hsm/token_admin.hpp"

#include "module.hpp"
#include "otpbox/hsm/error.hpp"

namespace otpbox::hsm {

namespace {

CK_UTF8CHAR_PTR utf8(std::string_view text) {
    return reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(text.data()));
}

}  // namespace

bool token_exists(const ModuleSpec& spec, std::string_view label) {
    const auto module = Module::load(spec.module_path, spec.environment);
    return module->find_token(label).has_value();
}

void init_token(const ModuleSpec& spec, std::string_view label, std::string_view so_pin,
                std::string_view user_pin) {
    const auto module = Module::load(spec.module_path, spec.environment);
    auto& api = module->api();
    const auto free = module->free_slots();
    if (free.empty()) {
        throw HsmError(Fault::config, "the HSM has no free slot for a new token");
    }
    const CK_SLOT_ID slot = free.front();
    const auto padded = padded_label(label);
    Module::check(api.C_InitToken(slot, utf8(so_pin), so_pin.size(), utf8(padded)), "C_InitToken");

    // The new token may now sit in another slot (SoftHSM2 moves it).
    const auto found = module->find_token(label);
    if (!found) {
        throw HsmError(Fault::config, "the new token cannot be found by its label");
    }
    CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
    Module::check(
        api.C_OpenSession(*found, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &session),
        "C_OpenSession");
    CK_RV rv = api.C_Login(session, CKU_SO, utf8(so_pin), so_pin.size());
    if (rv == CKR_OK) {
        rv = api.C_InitPIN(session, utf8(user_pin), user_pin.size());
        api.C_Logout(session);
    }
    api.C_CloseSession(session);
    Module::check(rv, "setting the user PIN");
}

}  // namespace otpbox::hsm
