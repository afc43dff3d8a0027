#include "otpbox/hsm/token_admin.hpp"

#include <string>

#include "module.hpp"
#include "otpbox/hsm/error.hpp"

namespace otpbox::hsm {

namespace {

CK_UTF8CHAR_PTR utf8(std::string_view text) {
    return reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(text.data()));
}

PinLengths pin_lengths(CK_FUNCTION_LIST& api, CK_SLOT_ID slot) {
    CK_TOKEN_INFO info{};
    Module::check(api.C_GetTokenInfo(slot, &info), "C_GetTokenInfo");
    PinLengths lengths;
    if (info.ulMinPinLen != CK_UNAVAILABLE_INFORMATION) {
        lengths.min = info.ulMinPinLen;
    }
    if (info.ulMaxPinLen != CK_UNAVAILABLE_INFORMATION && info.ulMaxPinLen != 0) {
        lengths.max = info.ulMaxPinLen;
    }
    return lengths;
}

// A token that refuses a PIN for its length says only CKR_PIN_INCORRECT or
// CKR_PIN_LEN_RANGE, which names neither the PIN nor the lengths it takes.
void check_pin_length(std::string_view what, std::string_view pin, const PinLengths& lengths) {
    if (pin.size() >= lengths.min && pin.size() <= lengths.max) {
        return;
    }
    const auto range = lengths.max == std::numeric_limits<std::size_t>::max()
                           ? "at least " + std::to_string(lengths.min)
                           : std::to_string(lengths.min) + " to " + std::to_string(lengths.max);
    throw HsmError(Fault::pin, "the " + std::string(what) + " must be " + range +
                                   " characters long for this token; it is " +
                                   std::to_string(pin.size()));
}

CK_SLOT_ID first_free_slot(const Module& module) {
    const auto free = module.free_slots();
    if (free.empty()) {
        throw HsmError(Fault::config, "the HSM has no free slot for a new token");
    }
    return free.front();
}

}  // namespace

PinLengths new_token_pin_lengths(const ModuleSpec& spec) {
    const auto module = Module::load(spec.module_path, spec.environment);
    return pin_lengths(module->api(), first_free_slot(*module));
}

bool token_exists(const ModuleSpec& spec, std::string_view label) {
    const auto module = Module::load(spec.module_path, spec.environment);
    return module->find_token(label).has_value();
}

void init_token(const ModuleSpec& spec, std::string_view label, std::string_view so_pin,
                std::string_view user_pin) {
    const auto module = Module::load(spec.module_path, spec.environment);
    auto& api = module->api();
    const CK_SLOT_ID slot = first_free_slot(*module);
    const auto lengths = pin_lengths(api, slot);
    check_pin_length("SO PIN", so_pin, lengths);
    check_pin_length("user PIN", user_pin, lengths);
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
