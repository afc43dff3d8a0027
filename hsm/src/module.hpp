#pragma once

// One loaded PKCS#11 module. The layer is its only caller of C_Initialize
// and C_Finalize in the process: modules are shared by path, initialised
// when first loaded and finalised when the last user lets go.

#include <p11-kit/pkcs11.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace otpbox::hsm {

class Module {
  public:
    // Sets the environment, loads and initialises the module at path, or
    // returns the one already loaded. Throws HsmError(Fault::config).
    static std::shared_ptr<Module> load(const std::filesystem::path& path,
                                        const std::map<std::string, std::string>& environment);

    ~Module();
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    [[nodiscard]] CK_FUNCTION_LIST& api() const { return *m_functions; }

    // The slot holding an initialised token of this label, if any.
    [[nodiscard]] std::optional<CK_SLOT_ID> find_token(std::string_view label) const;

    // As find_token, but when the module says it is not initialised (its
    // process restarted, or someone called C_Finalize) it is initialised
    // again first.
    [[nodiscard]] std::optional<CK_SLOT_ID> find_token_reinitialising(std::string_view label);

    // Slots whose token is present but not initialised.
    [[nodiscard]] std::vector<CK_SLOT_ID> free_slots() const;

    // Throws HsmError when rv is not CKR_OK, naming the call.
    static void check(CK_RV rv, std::string_view call);

  private:
    Module(void* handle, CK_FUNCTION_LIST* functions, bool finalize);

    void* m_handle;  // never dlclosed: see ~Module
    CK_FUNCTION_LIST* m_functions;
    bool m_finalize;
};

// A 32-character blank-padded token label, as PKCS#11 stores it.
[[nodiscard]] std::string padded_label(std::string_view label);

}  // namespace otpbox::hsm
