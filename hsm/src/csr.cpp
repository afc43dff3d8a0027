#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

#include "otpbox/hsm/error.hpp"
#include "otpbox/hsm/tls_key.hpp"

namespace otpbox::hsm {

namespace {

struct Free {
    void operator()(X509_REQ* request) const { X509_REQ_free(request); }
    void operator()(BIO* bio) const { BIO_free(bio); }
};

template <class T>
using Owned = std::unique_ptr<T, Free>;

}  // namespace

std::string make_csr_pem(EVP_PKEY& key, const X509_NAME& subject) {
    const Owned<X509_REQ> request(X509_REQ_new());
    const Owned<BIO> out(BIO_new(BIO_s_mem()));
    // RFC 2986 4.1: version 0 is the only one.
    if (!request || !out || X509_REQ_set_version(request.get(), 0) != 1 ||
        X509_REQ_set_subject_name(request.get(), &subject) != 1 ||
        X509_REQ_set_pubkey(request.get(), &key) != 1) {
        throw HsmError(Fault::other, "cannot build the certificate request");
    }
    if (X509_REQ_sign(request.get(), &key, EVP_sha256()) <= 0) {
        throw HsmError(Fault::other, "the HSM did not sign the certificate request");
    }
    if (PEM_write_bio_X509_REQ(out.get(), request.get()) != 1) {
        throw HsmError(Fault::other, "cannot write the certificate request");
    }
    char* data = nullptr;
    const long length = BIO_get_mem_data(out.get(), &data);
    return {data, static_cast<std::size_t>(length)};
}

}  // namespace otpbox::hsm
