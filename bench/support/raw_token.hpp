#pragma once

// The PKCS#11 module the hsm layer loaded, called directly: the reference
// the HSM benchmarks measure the layer against. Only the layer initialises
// and finalizes the module (DESIGN.md); the raw calls borrow its login,
// which PKCS#11 v2.40 5.6 makes the application's, not a session's.

#include <p11-kit/pkcs11.h>

#include <string_view>

namespace otpbox::bench {

// Exits the program naming the call: a reference loop that failed quietly
// would count its failures as operations.
void check(CK_RV rv, const char* what);

// A session on the token, closed when it goes.
class RawSession {
  public:
    RawSession(CK_FUNCTION_LIST& fn, CK_SLOT_ID slot);
    ~RawSession();
    RawSession(RawSession&& other) noexcept;
    RawSession(const RawSession&) = delete;
    RawSession& operator=(const RawSession&) = delete;
    RawSession& operator=(RawSession&&) = delete;

    [[nodiscard]] CK_SESSION_HANDLE handle() const noexcept { return m_handle; }

    // The one object of that label; exits when there is none.
    [[nodiscard]] CK_OBJECT_HANDLE find_key(std::string_view label) const;

  private:
    CK_FUNCTION_LIST* m_fn;
    CK_SESSION_HANDLE m_handle = CK_INVALID_HANDLE;
};

class RawToken {
  public:
    // The module must already be loaded by the layer in this process.
    RawToken(const char* module_path, std::string_view token_label);
    ~RawToken();
    RawToken(const RawToken&) = delete;
    RawToken& operator=(const RawToken&) = delete;

    [[nodiscard]] CK_FUNCTION_LIST& fn() const noexcept { return *m_fn; }
    [[nodiscard]] RawSession open_session() const { return RawSession(*m_fn, m_slot); }

  private:
    void* m_library = nullptr;
    CK_FUNCTION_LIST* m_fn = nullptr;
    CK_SLOT_ID m_slot = 0;
};

}  // namespace otpbox::bench
