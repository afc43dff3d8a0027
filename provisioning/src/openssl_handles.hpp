#pragma once

// Move-only owners of OpenSSL objects, and the one place that turns a failed
// OpenSSL call into a PkiError with the library's own reason.

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string_view>

namespace otpbox::provisioning::detail {

template <auto Free>
struct OpensslDeleter {
    template <class T>
    void operator()(T* object) const noexcept {
        Free(object);
    }
};

using PkeyPtr = std::unique_ptr<EVP_PKEY, OpensslDeleter<EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, OpensslDeleter<X509_free>>;
using X509ReqPtr = std::unique_ptr<X509_REQ, OpensslDeleter<X509_REQ_free>>;
using X509NamePtr = std::unique_ptr<X509_NAME, OpensslDeleter<X509_NAME_free>>;
using X509ExtPtr = std::unique_ptr<X509_EXTENSION, OpensslDeleter<X509_EXTENSION_free>>;
using BioPtr = std::unique_ptr<BIO, OpensslDeleter<BIO_free_all>>;

inline void free_extension_stack(STACK_OF(X509_EXTENSION) * stack) noexcept {
    sk_X509_EXTENSION_pop_free(stack, X509_EXTENSION_free);
}
using ExtStackPtr = std::unique_ptr<STACK_OF(X509_EXTENSION), OpensslDeleter<free_extension_stack>>;

// Throws PkiError "<step>: <OpenSSL's reason>" and clears OpenSSL's error queue.
[[noreturn]] void throw_openssl(std::string_view step);

// Throws through throw_openssl when ok is false.
inline void check(bool ok, std::string_view step) {
    if (!ok) {
        throw_openssl(step);
    }
}

}  // namespace otpbox::provisioning::detail
