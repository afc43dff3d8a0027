#include <openssl/err.h>

#include <string>

#include "openssl_handles.hpp"
#include "otpbox/provisioning/pki.hpp"

namespace otpbox::provisioning::detail {

void throw_openssl(std::string_view step) {
    std::string message(step);
    const unsigned long code = ERR_get_error();
    if (code != 0) {
        char reason[256];
        ERR_error_string_n(code, reason, sizeof reason);
        message += ": ";
        message += reason;
    }
    ERR_clear_error();
    throw PkiError(message);
}

}  // namespace otpbox::provisioning::detail
