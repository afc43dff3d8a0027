#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

#include "hsm_test_support.hpp"
#include "otpbox/hsm/error.hpp"
#include "otpbox/hsm/key_labels.hpp"
#include "otpbox/hsm/tls_key.hpp"
#include "test_support.hpp"

namespace otpbox::hsm {
namespace {

using otpbox::test::SoftHsmToken;

struct ReqFree {
    void operator()(X509_REQ* request) const { X509_REQ_free(request); }
};

std::unique_ptr<X509_REQ, ReqFree> parse_csr(const std::string& pem) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    std::unique_ptr<X509_REQ, ReqFree> request(
        PEM_read_bio_X509_REQ(bio, nullptr, nullptr, nullptr));
    BIO_free(bio);
    return request;
}

std::vector<std::uint8_t> der_of(EVP_PKEY* key) {
    const int length = i2d_PUBKEY(key, nullptr);
    std::vector<std::uint8_t> der(static_cast<std::size_t>(length));
    unsigned char* out = der.data();
    i2d_PUBKEY(key, &out);
    return der;
}

// A certificate for the public key (DER SubjectPublicKeyInfo), issued by a
// throwaway P-256 key made here.
std::vector<std::uint8_t> certificate_for(const std::vector<std::uint8_t>& public_key,
                                          long serial) {
    const unsigned char* in = public_key.data();
    const std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> subject_key(
        d2i_PUBKEY(nullptr, &in, static_cast<long>(public_key.size())), EVP_PKEY_free);
    const std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> issuer_key(EVP_EC_gen("P-256"),
                                                                         EVP_PKEY_free);
    const std::unique_ptr<X509, decltype(&X509_free)> certificate(X509_new(), X509_free);
    if (!subject_key || !issuer_key || !certificate) {
        return {};
    }
    X509_set_version(certificate.get(), X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(certificate.get()), serial);
    X509_gmtime_adj(X509_getm_notBefore(certificate.get()), 0);
    X509_gmtime_adj(X509_getm_notAfter(certificate.get()), 3600);
    X509_NAME* name = X509_get_subject_name(certificate.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(certificate.get(), name);
    X509_set_pubkey(certificate.get(), subject_key.get());
    if (X509_sign(certificate.get(), issuer_key.get(), EVP_sha256()) <= 0) {
        return {};
    }
    const int length = i2d_X509(certificate.get(), nullptr);
    std::vector<std::uint8_t> der(static_cast<std::size_t>(length));
    unsigned char* out = der.data();
    i2d_X509(certificate.get(), &out);
    return der;
}

class TlsKey : public ::testing::Test {
  protected:
    SoftHsmToken m_token;
    HsmConfig m_config = testing::config_for(m_token);
    std::shared_ptr<Hsm> m_hsm = Hsm::open(m_config);
    std::string m_label = keys::versioned(keys::kTls, 1);
};

TEST_F(TlsKey, EcPair_SharesIdAndStaysInside) {
    m_hsm->generate_key_pair(m_label, KeyKind::ec_p256);
    const auto keys = m_hsm->list_keys();
    ASSERT_EQ(keys.size(), 1u);  // the private key; public keys are not listed
    EXPECT_EQ(keys[0].kind, KeyKind::ec_p256);
    EXPECT_TRUE(keys[0].sensitive);
    EXPECT_FALSE(keys[0].extractable);
    EXPECT_EQ(testing::read_key_value_rv(m_config, m_label, CKO_PRIVATE_KEY),
              CKR_ATTRIBUTE_SENSITIVE);
    EXPECT_EQ(testing::read_key_id(m_config, m_label, CKO_PUBLIC_KEY), keys[0].id);
    EXPECT_THROW(m_hsm->generate_key_pair(m_label, KeyKind::ec_p256), HsmError);
}

TEST_F(TlsKey, Csr_SignedThroughHsmVerifies) {
    m_hsm->generate_key_pair(m_label, KeyKind::ec_p256);
    const auto key = hsm_private_key(m_hsm, m_label);
    // The request names the subject exactly as given, in the name's order.
    const auto pem =
        make_csr_pem(*key, *testing::name_of({{"O", "otpbox development"}, {"CN", "otpbox.test"}}));
    ASSERT_NE(pem.find("BEGIN CERTIFICATE REQUEST"), std::string::npos);

    const auto request = parse_csr(pem);
    ASSERT_TRUE(request);
    EVP_PKEY* public_key = X509_REQ_get0_pubkey(request.get());
    ASSERT_NE(public_key, nullptr);
    EXPECT_EQ(X509_REQ_verify(request.get(), public_key), 1);
    EXPECT_EQ(der_of(public_key), m_hsm->public_key_der(m_label));

    char subject[256] = {};
    X509_NAME_oneline(X509_REQ_get_subject_name(request.get()), subject, sizeof(subject));
    EXPECT_STREQ(subject, "/O=otpbox development/CN=otpbox.test");
}

TEST_F(TlsKey, Csr_TamperedDoesNotVerify) {
    m_hsm->generate_key_pair(m_label, KeyKind::ec_p256);
    const auto key = hsm_private_key(m_hsm, m_label);
    const auto request = parse_csr(make_csr_pem(*key, *testing::name_of({{"CN", "otpbox.test"}})));
    ASSERT_TRUE(request);
    // Another subject under the same signature.
    X509_NAME* other = X509_NAME_new();
    X509_NAME_add_entry_by_txt(other, "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>("intruder"), -1, -1, 0);
    X509_REQ_set_subject_name(request.get(), other);
    X509_NAME_free(other);
    EXPECT_NE(X509_REQ_verify(request.get(), X509_REQ_get0_pubkey(request.get())), 1);
}

TEST_F(TlsKey, RsaPair_PublicKeyReadable) {
    m_hsm->generate_key_pair(m_label, KeyKind::rsa_3072);
    const auto der = m_hsm->public_key_der(m_label);
    const unsigned char* cursor = der.data();
    EVP_PKEY* parsed = d2i_PUBKEY(nullptr, &cursor, static_cast<long>(der.size()));
    ASSERT_NE(parsed, nullptr);
    EXPECT_EQ(EVP_PKEY_get_bits(parsed), 3072);
    EVP_PKEY_free(parsed);
    // Only EC keys get an OpenSSL signing key so far.
    EXPECT_THROW((void)hsm_private_key(m_hsm, m_label), HsmError);
}

TEST_F(TlsKey, MissingPair_IsMissingKey) {
    try {
        (void)hsm_private_key(m_hsm, "otpbox-tls-v9");
        FAIL() << "no error";
    } catch (const HsmError& error) {
        EXPECT_EQ(error.fault(), Fault::missing_key);
    }
}

TEST_F(TlsKey, Certificate_KeptBesideItsPairAndReplaced) {
    m_hsm->generate_key_pair(m_label, KeyKind::ec_p256);
    EXPECT_FALSE(m_hsm->stored_certificate(m_label));

    const auto first = certificate_for(m_hsm->public_key_der(m_label), 1);
    ASSERT_FALSE(first.empty());
    m_hsm->store_certificate(m_label, first);
    EXPECT_EQ(m_hsm->stored_certificate(m_label), first);

    const auto second = certificate_for(m_hsm->public_key_der(m_label), 2);
    m_hsm->store_certificate(m_label, second);
    EXPECT_EQ(m_hsm->stored_certificate(m_label), second);

    // Still one private key, one public key and now one certificate object.
    const auto listing = otpbox::test::run_command(
        "SOFTHSM2_CONF='" + m_token.conf_path().string() + "' pkcs11-tool --module " +
        SoftHsmToken::module_path() + " --token-label " + m_token.label() + " --login --pin " +
        m_token.user_pin() + " --list-objects --type cert 2>&1");
    std::size_t certificates = 0;
    for (auto at = listing.output.find("Certificate Object"); at != std::string::npos;
         at = listing.output.find("Certificate Object", at + 1)) {
        ++certificates;
    }
    EXPECT_EQ(certificates, 1u) << listing.output;
}

TEST_F(TlsKey, Certificate_OfAnotherKeyOrNoCertificateIsRefused) {
    m_hsm->generate_key_pair(m_label, KeyKind::ec_p256);
    const std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> other(EVP_EC_gen("P-256"),
                                                                    EVP_PKEY_free);
    const auto foreign = certificate_for(der_of(other.get()), 3);
    try {
        m_hsm->store_certificate(m_label, foreign);
        ADD_FAILURE() << "a certificate for another key was stored";
    } catch (const HsmError& error) {
        EXPECT_EQ(error.fault(), Fault::data);
    }
    const std::vector<std::uint8_t> garbage{0x30, 0x03, 0x02, 0x01, 0x01};
    EXPECT_THROW(m_hsm->store_certificate(m_label, garbage), HsmError);
    EXPECT_FALSE(m_hsm->stored_certificate(m_label));
}

}  // namespace
}  // namespace otpbox::hsm
