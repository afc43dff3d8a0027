// A PKCS#11 module for tests that forwards to a real one (SoftHSM2 by
// default) and injects faults on command. The command is the first line
// of the file named by OTPBOX_FAULTMOD_CONTROL, read on every wrapped call:
//
//   pass                  forward every call (also when the file is missing)
//   removed               every wrapped call answers CKR_DEVICE_REMOVED
//   session_invalid N     the next N calls on a session answer CKR_SESSION_HANDLE_INVALID
//   not_logged_in N       the next N calls on a session answer CKR_USER_NOT_LOGGED_IN
//   stall MS              every wrapped call sleeps MS milliseconds, then forwards
//   removed_after MS      every wrapped call sleeps MS milliseconds, then answers
//                         CKR_DEVICE_REMOVED (a token lost while a call was in it)
//   pin_incorrect         C_Login answers CKR_PIN_INCORRECT (other calls forward)
//   twin_generate         C_GenerateKey makes a second key of the same template
//                         after the one it returns, as another process making the
//                         same key at the same moment would
//
// C_Login and C_CloseSession take part in none of these but pin_incorrect.
// Words for them may also follow any command on its line:
//
//   pin_incorrect         C_Login answers CKR_PIN_INCORRECT
//   login_stall MS        C_Login sleeps MS milliseconds first
//   close_stall MS        C_CloseSession sleeps MS milliseconds first
//
// ("not_logged_in 1 pin_incorrect": a lost login, and the PIN refused when
// the caller logs in again.) A count starts again whenever the file's text
// changes. The forwarded module is OTPBOX_FAULTMOD_TARGET, or SoftHSM2's
// usual path. The sessions opened through this module and not closed are
// its CK_TOKEN_INFO ulSessionCount when the forwarded module does not count
// them. otpbox_faultmod_login_calls(), found with dlsym, counts the C_Login
// calls made through this module, so a test can tell that a PIN was not
// tried again.

#include <dlfcn.h>
#include <p11-kit/pkcs11.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>

namespace {

constexpr const char* kDefaultTarget = "/usr/lib/softhsm/libsofthsm2.so";

CK_FUNCTION_LIST* g_target = nullptr;
CK_FUNCTION_LIST g_wrapped{};

std::mutex g_mutex;
std::string g_last_command;
long g_remaining = 0;

std::string read_command() {
    const char* path = std::getenv("OTPBOX_FAULTMOD_CONTROL");
    if (path == nullptr) {
        return "pass";
    }
    std::ifstream in(path);
    std::string line;
    if (!std::getline(in, line)) {
        return "pass";
    }
    return line;
}

// Whether the command has that word; amount, if given, is set to the number
// after it.
bool has_word(const std::string& command, std::string_view wanted, long* amount = nullptr) {
    std::istringstream words(command);
    std::string word;
    while (words >> word) {
        if (word == wanted) {
            if (amount != nullptr) {
                words >> *amount;
            }
            return true;
        }
    }
    return false;
}

void sleep_if(const std::string& command, std::string_view word) {
    long milliseconds = 0;
    if (has_word(command, word, &milliseconds)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds));
    }
}

// CKR_OK to forward the call, anything else to answer it instead. A call
// that makes a session only fails when the device is "removed".
CK_RV injected_fault(bool on_session = true) {
    const auto command = read_command();
    std::istringstream words(command);
    std::string mode;
    long amount = 0;
    words >> mode >> amount;

    if (mode == "removed") {
        return CKR_DEVICE_REMOVED;
    }
    if (mode == "removed_after") {
        std::this_thread::sleep_for(std::chrono::milliseconds(amount));
        return CKR_DEVICE_REMOVED;
    }
    if (mode == "stall") {
        std::this_thread::sleep_for(std::chrono::milliseconds(amount));
        return CKR_OK;
    }
    if (!on_session || (mode != "session_invalid" && mode != "not_logged_in")) {
        return CKR_OK;
    }
    std::lock_guard lock(g_mutex);
    if (command != g_last_command) {
        g_last_command = command;
        g_remaining = amount;
    }
    if (g_remaining <= 0) {
        return CKR_OK;
    }
    --g_remaining;
    return mode == "session_invalid" ? CKR_SESSION_HANDLE_INVALID : CKR_USER_NOT_LOGGED_IN;
}

#define OTPBOX_FAULT_OR_FORWARD(call, ...)                            \
    do {                                                              \
        const CK_RV fault = injected_fault();                         \
        return fault != CKR_OK ? fault : g_target->call(__VA_ARGS__); \
    } while (false)

// Sessions opened through this module and not closed yet: SoftHSM2 does not
// count them in CK_TOKEN_INFO, so this module fills ulSessionCount in.
std::atomic<long> g_open_sessions{0};

CK_RV wrapped_open_session(CK_SLOT_ID slot, CK_FLAGS flags, void* application, CK_NOTIFY notify,
                           CK_SESSION_HANDLE_PTR session) {
    const CK_RV fault = injected_fault(false);
    if (fault != CKR_OK) {
        return fault;
    }
    const CK_RV rv = g_target->C_OpenSession(slot, flags, application, notify, session);
    if (rv == CKR_OK) {
        ++g_open_sessions;
    }
    return rv;
}

CK_RV wrapped_close_session(CK_SESSION_HANDLE session) {
    sleep_if(read_command(), "close_stall");
    const CK_RV rv = g_target->C_CloseSession(session);
    if (rv == CKR_OK) {
        --g_open_sessions;
    }
    return rv;
}

CK_RV wrapped_get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info) {
    const CK_RV rv = g_target->C_GetTokenInfo(slot, info);
    if (rv == CKR_OK && info != nullptr && info->ulSessionCount == CK_UNAVAILABLE_INFORMATION) {
        info->ulSessionCount = static_cast<CK_ULONG>(g_open_sessions.load());
    }
    return rv;
}

CK_RV wrapped_generate_random(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG length) {
    OTPBOX_FAULT_OR_FORWARD(C_GenerateRandom, session, data, length);
}

CK_RV wrapped_sign_init(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                        CK_OBJECT_HANDLE key) {
    OTPBOX_FAULT_OR_FORWARD(C_SignInit, session, mechanism, key);
}

CK_RV wrapped_encrypt_init(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                           CK_OBJECT_HANDLE key) {
    OTPBOX_FAULT_OR_FORWARD(C_EncryptInit, session, mechanism, key);
}

CK_RV wrapped_decrypt_init(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                           CK_OBJECT_HANDLE key) {
    OTPBOX_FAULT_OR_FORWARD(C_DecryptInit, session, mechanism, key);
}

CK_RV wrapped_find_objects_init(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR query, CK_ULONG count) {
    OTPBOX_FAULT_OR_FORWARD(C_FindObjectsInit, session, query, count);
}

std::atomic<unsigned long> g_login_calls{0};

// C_Login only sleeps or refuses the PIN, as its words say: a refused PIN
// is answered here, so the real token never counts a wrong PIN.
CK_RV wrapped_login(CK_SESSION_HANDLE session, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin,
                    CK_ULONG length) {
    ++g_login_calls;
    const auto command = read_command();
    sleep_if(command, "login_stall");
    if (has_word(command, "pin_incorrect")) {
        return CKR_PIN_INCORRECT;
    }
    return g_target->C_Login(session, user, pin, length);
}

CK_RV wrapped_generate_key(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                           CK_ATTRIBUTE_PTR attributes, CK_ULONG count, CK_OBJECT_HANDLE_PTR key) {
    const CK_RV rv = g_target->C_GenerateKey(session, mechanism, attributes, count, key);
    std::istringstream words(read_command());
    std::string mode;
    words >> mode;
    if (rv == CKR_OK && mode == "twin_generate") {
        CK_OBJECT_HANDLE twin = CK_INVALID_HANDLE;
        (void)g_target->C_GenerateKey(session, mechanism, attributes, count, &twin);
    }
    return rv;
}

bool load_target() {
    const char* path = std::getenv("OTPBOX_FAULTMOD_TARGET");
    void* handle = ::dlopen(path != nullptr ? path : kDefaultTarget, RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
        return false;
    }
    using GetFunctionList = CK_RV (*)(CK_FUNCTION_LIST_PTR_PTR);
    auto get_list = reinterpret_cast<GetFunctionList>(::dlsym(handle, "C_GetFunctionList"));
    if (get_list == nullptr || get_list(&g_target) != CKR_OK) {
        return false;
    }
    g_wrapped = *g_target;
    g_wrapped.C_OpenSession = wrapped_open_session;
    g_wrapped.C_CloseSession = wrapped_close_session;
    g_wrapped.C_GetTokenInfo = wrapped_get_token_info;
    g_wrapped.C_GenerateRandom = wrapped_generate_random;
    g_wrapped.C_SignInit = wrapped_sign_init;
    g_wrapped.C_EncryptInit = wrapped_encrypt_init;
    g_wrapped.C_DecryptInit = wrapped_decrypt_init;
    g_wrapped.C_FindObjectsInit = wrapped_find_objects_init;
    g_wrapped.C_Login = wrapped_login;
    g_wrapped.C_GenerateKey = wrapped_generate_key;
    return true;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) CK_RV C_GetFunctionList(
    CK_FUNCTION_LIST_PTR_PTR list) {
    static const bool loaded = load_target();
    if (!loaded || list == nullptr) {
        return CKR_GENERAL_ERROR;
    }
    *list = &g_wrapped;
    return CKR_OK;
}

extern "C" __attribute__((visibility("default"))) unsigned long otpbox_faultmod_login_calls() {
    return g_login_calls.load();
}
