#include "certificate_fields.hpp"

#include <openssl/err.h>
#include <openssl/x509.h>

#include <memory>

#include "otpbox/hsm/error.hpp"

namespace otpbox::hsm {

namespace {

// The DER of an OpenSSL object through its i2d function.
template <class Object, class Encode>
std::vector<std::uint8_t> der_of(const Object* object, Encode encode) {
    const int size = encode(object, nullptr);
    if (size <= 0) {
        throw HsmError(Fault::data, "certificate: a field cannot be encoded");
    }
    std::vector<std::uint8_t> der(static_cast<std::size_t>(size));
    auto* out = der.data();
    encode(object, &out);
    return der;
}

}  // namespace

CertificateFields certificate_fields(std::span<const std::uint8_t> der) {
    const auto* in = der.data();
    const std::unique_ptr<X509, decltype(&X509_free)> certificate(
        d2i_X509(nullptr, &in, static_cast<long>(der.size())), X509_free);
    if (!certificate || in != der.data() + der.size()) {
        ERR_clear_error();
        throw HsmError(Fault::data, "not one DER X.509 certificate");
    }
    CertificateFields fields;
    fields.subject =
        der_of(X509_get_subject_name(certificate.get()),
               [](const X509_NAME* name, unsigned char** out) { return i2d_X509_NAME(name, out); });
    fields.issuer =
        der_of(X509_get_issuer_name(certificate.get()),
               [](const X509_NAME* name, unsigned char** out) { return i2d_X509_NAME(name, out); });
    fields.serial = der_of(X509_get0_serialNumber(certificate.get()),
                           [](const ASN1_INTEGER* serial, unsigned char** out) {
                               return i2d_ASN1_INTEGER(serial, out);
                           });
    fields.public_key =
        der_of(X509_get0_pubkey(certificate.get()),
               [](const EVP_PKEY* key, unsigned char** out) { return i2d_PUBKEY(key, out); });
    return fields;
}

}  // namespace otpbox::hsm
