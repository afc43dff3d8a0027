#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "hsm_test_support.hpp"
#include "otpbox/hsm/error.hpp"
#include "otpbox/hsm/key_labels.hpp"
#include "otpbox/hsm/tls_key.hpp"

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
    const auto pem = make_csr_pem(*key, "CN=otpbox.test,O=otpbox development");
    ASSERT_NE(pem.find("BEGIN CERTIFICATE REQUEST"), std::string::npos);

    const auto request = parse_csr(pem);
    ASSERT_TRUE(request);
    EVP_PKEY* public_key = X509_REQ_get0_pubkey(request.get());
    ASSERT_NE(public_key, nullptr);
    EXPECT_EQ(X509_REQ_verify(request.get(), public_key), 1);
    EXPECT_EQ(der_of(public_key), m_hsm->public_key_der(m_label));

    char subject[256] = {};
    X509_NAME_oneline(X509_REQ_get_subject_name(request.get()), subject, sizeof(subject));
    EXPECT_STREQ(subject, "/CN=otpbox.test/O=otpbox development");
}

TEST_F(TlsKey, Csr_TamperedDoesNotVerify) {
    m_hsm->generate_key_pair(m_label, KeyKind::ec_p256);
    const auto key = hsm_private_key(m_hsm, m_label);
    const auto request = parse_csr(make_csr_pem(*key, "CN=otpbox.test"));
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

}  // namespace
}  // namespace otpbox::hsm
