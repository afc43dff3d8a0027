#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

#include "otpbox/hsm/error.hpp"
#include "otpbox/hsm/tls_key.hpp"

namespace otpbox::hsm {

namespace {

struct Free {
    void operator()(X509_REQ* request) const { X509_REQ_free(request); }
    void operator()(X509_NAME* name) const { X509_NAME_free(name); }
    void operator()(BIO* bio) const { BIO_free(bio); }
};

template <class T>
using Owned = std::unique_ptr<T, Free>;

// "CN=otpbox,O=Example" in order; no escaped commas (RFC 4514 2.4).
Owned<X509_NAME> parse_subject(std::string_view subject) {
    Owned<X509_NAME> name(X509_NAME_new());
    while (name && !subject.empty()) {
        const auto comma = subject.find(',');
        const auto part = subject.substr(0, comma);
        subject = comma == std::string_view::npos ? "" : subject.substr(comma + 1);
        const auto equals = part.find('=');
        if (equals == std::string_view::npos) {
            throw HsmError(Fault::data, "the subject needs TYPE=value parts");
        }
        const std::string type(part.substr(0, equals));
        const std::string value(part.substr(equals + 1));
        if (X509_NAME_add_entry_by_txt(name.get(), type.c_str(), MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>(value.c_str()), -1,
                                       -1, 0) != 1) {
            throw HsmError(Fault::data, "the subject has an unknown attribute type " + type);
        }
    }
    return name;
}

}  // namespace

std::string make_csr_pem(EVP_PKEY& key, std::string_view subject) {
    const auto name = parse_subject(subject);
    const Owned<X509_REQ> request(X509_REQ_new());
    const Owned<BIO> out(BIO_new(BIO_s_mem()));
    // RFC 2986 4.1: version 0 is the only one.
    if (!name || !request || !out || X509_REQ_set_version(request.get(), 0) != 1 ||
        X509_REQ_set_subject_name(request.get(), name.get()) != 1 ||
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
