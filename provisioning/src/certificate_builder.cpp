#include "certificate_builder.hpp"

#include <openssl/bn.h>
#include <openssl/rand.h>

#include "x509_parts.hpp"

namespace otpbox::provisioning::detail {

namespace {

// RFC 5280 4.1.2.2: a positive serial number of at most 20 octets, unique per
// CA; 16 random octets with the top bit cleared make a collision unlikely.
void set_random_serial(X509* certificate) {
    unsigned char bytes[16];
    check(RAND_bytes(bytes, sizeof bytes) == 1, "random serial number");
    bytes[0] &= 0x7f;
    std::unique_ptr<BIGNUM, OpensslDeleter<BN_free>> number(
        BN_bin2bn(bytes, sizeof bytes, nullptr));
    check(number != nullptr, "serial number");
    check(BN_to_ASN1_INTEGER(number.get(), X509_get_serialNumber(certificate)) != nullptr,
          "serial number");
}

void set_validity(X509* certificate, int days) {
    check(X509_gmtime_adj(X509_getm_notBefore(certificate), 0) != nullptr, "notBefore");
    check(X509_time_adj_ex(X509_getm_notAfter(certificate), days, 0, nullptr) != nullptr,
          "notAfter");
}

}  // namespace

X509Ptr issue_certificate(const CertificateSpec& spec, EVP_PKEY* subject_key, X509* issuer,
                          EVP_PKEY* issuer_key) {
    X509Ptr certificate(X509_new());
    check(certificate != nullptr, "X509_new");
    check(X509_set_version(certificate.get(), X509_VERSION_3) == 1, "certificate version");
    set_random_serial(certificate.get());
    set_validity(certificate.get(), spec.validity_days);

    const auto subject = parse_subject(spec.subject);
    check(X509_set_subject_name(certificate.get(), subject.get()) == 1, "subject");
    X509* const signer = issuer != nullptr ? issuer : certificate.get();
    check(X509_set_issuer_name(certificate.get(), X509_get_subject_name(signer)) == 1, "issuer");
    check(X509_set_pubkey(certificate.get(), subject_key) == 1, "public key");

    for (const auto& [nid, value] : spec.extensions) {
        const auto extension = make_extension(nid, value, signer, certificate.get());
        check(X509_add_ext(certificate.get(), extension.get(), -1) == 1, "adding an extension");
    }

    EVP_PKEY* const signing_key = issuer != nullptr ? issuer_key : subject_key;
    check(X509_sign(certificate.get(), signing_key, EVP_sha256()) > 0, "signing a certificate");
    return certificate;
}

}  // namespace otpbox::provisioning::detail
