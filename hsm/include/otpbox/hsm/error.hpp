#pragma once

// Every CK_RV passes classify(): it names the value and says what the layer
// does about it. HsmError carries both through the layers like any other
// std::system_error.

#include <p11-kit/pkcs11.h>

#include <string>
#include <string_view>
#include <system_error>

namespace otpbox::hsm {

// What a failed call means for the layer and its callers.
enum class Fault {
    none,           // CKR_OK
    session_lost,   // this session is dead: drop it, use another
    token_gone,     // device or token removed, module restarted: reconnect everything
    not_logged_in,  // the login was lost: log in once more
    data,           // the caller's input (or a failed tag check): no reconnect
    pin,            // wrong, locked or expired PIN: stop, never retry
    stalled,        // a call overran its deadline; its session is abandoned
    missing_key,    // no key of that label in the token
    config,         // module cannot be loaded, token not found, unreadable PIN file
    other,          // anything else
};

[[nodiscard]] const std::error_category& ckr_category() noexcept;

// The category of errors found by the layer itself (no CK_RV): the value
// is the Fault.
[[nodiscard]] const std::error_category& fault_category() noexcept;

// The PKCS#11 name of a return value ("CKR_DEVICE_REMOVED"), or its hex form.
[[nodiscard]] std::string ckr_name(CK_RV rv);

[[nodiscard]] Fault classify(CK_RV rv) noexcept;

[[nodiscard]] std::string_view fault_name(Fault fault) noexcept;

class HsmError : public std::system_error {
  public:
    HsmError(CK_RV rv, const std::string& what);
    HsmError(Fault fault, const std::string& what);

    [[nodiscard]] Fault fault() const noexcept { return m_fault; }

    // The message alone: it names the CK_RV itself where there is one.
    [[nodiscard]] const char* what() const noexcept override { return m_message.c_str(); }

    // True when the HSM cannot serve right now (token gone, stalled, not
    // logged in): the API answers 503 with Retry-After.
    [[nodiscard]] bool unavailable() const noexcept;

  private:
    Fault m_fault;
    std::string m_message;
};

}  // namespace otpbox::hsm
