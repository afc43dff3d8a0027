#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "hsm_test_support.hpp"
#include "otpbox/hsm/error.hpp"
#include "otpbox/hsm/hsm.hpp"
#include "otpbox/hsm/key_labels.hpp"

namespace otpbox::hsm {
namespace {

using otpbox::test::SoftHsmToken;
using testing::config_for;
using testing::from_hex;
using testing::to_bytes;

class HsmOperations : public ::testing::Test {
  protected:
    SoftHsmToken m_token;
    HsmConfig m_config = config_for(m_token);
    std::shared_ptr<Hsm> m_hsm = Hsm::open(m_config);
};

// RFC 4231 4.7 and 4.8: a 131-byte key, longer than the SHA-256 block.
const std::string kRfc4231Case6 = "Test Using Larger Than Block-Size Key - Hash Key First";
const std::string kRfc4231Case7 =
    "This is a test using a larger than block-size key and a larger than block-size data. The "
    "key needs to be hashed before being used by the HMAC algorithm.";

TEST_F(HsmOperations, RandomBytes_Differ) {
    const auto first = m_hsm->random_bytes(32);
    const auto second = m_hsm->random_bytes(32);
    EXPECT_EQ(first.size(), 32u);
    EXPECT_NE(first, second);
}

TEST_F(HsmOperations, HmacSha256_Rfc4231KnownAnswers) {
    const std::vector<std::uint8_t> key(131, 0xaa);
    m_hsm->import_secret_key("kat-hmac", KeyKind::hmac_sha256, key);
    EXPECT_EQ(m_hsm->hmac_sha256("kat-hmac", to_bytes(kRfc4231Case6)),
              from_hex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"));
    EXPECT_EQ(m_hsm->hmac_sha256("kat-hmac", to_bytes(kRfc4231Case7)),
              from_hex("9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"));
}

TEST_F(HsmOperations, HmacVerify_TrueAndFalse) {
    const auto label = keys::versioned(keys::kOtpMac, 1);
    m_hsm->generate_secret_key(label, KeyKind::hmac_sha256);
    const auto data = to_bytes("challenge-1|123456");
    auto mac = m_hsm->hmac_sha256(label, data);
    EXPECT_TRUE(m_hsm->hmac_sha256_verify(label, data, mac));
    EXPECT_FALSE(m_hsm->hmac_sha256_verify(label, to_bytes("challenge-1|123457"), mac));
    mac[31] ^= 0x01;
    EXPECT_FALSE(m_hsm->hmac_sha256_verify(label, data, mac));
    mac.pop_back();
    EXPECT_FALSE(m_hsm->hmac_sha256_verify(label, data, mac));
}

TEST_F(HsmOperations, Hmac_MissingKeyIsReported) {
    try {
        (void)m_hsm->hmac_sha256("no-such-key", to_bytes("x"));
        FAIL() << "no error";
    } catch (const HsmError& error) {
        EXPECT_EQ(error.fault(), Fault::missing_key);
        EXPECT_FALSE(error.unavailable());
    }
}

TEST_F(HsmOperations, AesGcm_RoundTrip) {
    const auto label = keys::versioned(keys::kDataEnc, 1);
    m_hsm->generate_secret_key(label, KeyKind::aes_256);
    const auto plain = to_bytes("+491701234567");
    const auto aad = to_bytes("user-42");
    const auto sealed = m_hsm->aes_gcm_encrypt(label, plain, aad);
    EXPECT_EQ(sealed.size(), 12 + plain.size() + 16);
    const auto opened = m_hsm->aes_gcm_decrypt(label, sealed, aad);
    ASSERT_TRUE(opened.has_value());
    EXPECT_TRUE(std::ranges::equal(opened->bytes(), plain));

    // A fresh IV each time: the same message never seals the same way.
    const auto again = m_hsm->aes_gcm_encrypt(label, plain, aad);
    EXPECT_FALSE(std::equal(sealed.begin(), sealed.begin() + 12, again.begin()));
}

TEST_F(HsmOperations, AesGcm_WrongAadIsNullopt) {
    const auto label = keys::versioned(keys::kDataEnc, 1);
    m_hsm->generate_secret_key(label, KeyKind::aes_256);
    const auto sealed = m_hsm->aes_gcm_encrypt(label, to_bytes("secret"), to_bytes("user-1"));
    EXPECT_FALSE(m_hsm->aes_gcm_decrypt(label, sealed, to_bytes("user-2")).has_value());
    // The session that saw the failure still serves.
    EXPECT_TRUE(m_hsm->aes_gcm_decrypt(label, sealed, to_bytes("user-1")).has_value());
}

TEST_F(HsmOperations, AesGcm_TamperedBlobIsNullopt) {
    const auto label = keys::versioned(keys::kDataEnc, 1);
    m_hsm->generate_secret_key(label, KeyKind::aes_256);
    const auto aad = to_bytes("user-1");
    const auto sealed = m_hsm->aes_gcm_encrypt(label, to_bytes("secret"), aad);
    for (const std::size_t at : {std::size_t{0}, std::size_t{12}, sealed.size() - 1}) {
        auto tampered = sealed;
        tampered[at] ^= 0x80;
        EXPECT_FALSE(m_hsm->aes_gcm_decrypt(label, tampered, aad).has_value()) << "byte " << at;
    }
    EXPECT_FALSE(m_hsm->aes_gcm_decrypt(label, std::span(sealed).first(20), aad).has_value());
}

TEST_F(HsmOperations, AesGcm_EmptyAadRefused) {
    const auto label = keys::versioned(keys::kDataEnc, 1);
    m_hsm->generate_secret_key(label, KeyKind::aes_256);
    EXPECT_THROW((void)m_hsm->aes_gcm_encrypt(label, to_bytes("x"), {}), HsmError);
}

TEST_F(HsmOperations, GeneratedKey_SensitiveNotExtractable) {
    const auto hmac_label = keys::versioned(keys::kCardKdk, 1);
    const auto aes_label = keys::versioned(keys::kDataEnc, 1);
    m_hsm->generate_secret_key(hmac_label, KeyKind::hmac_sha256);
    m_hsm->generate_secret_key(aes_label, KeyKind::aes_256);
    EXPECT_TRUE(m_hsm->has_key(hmac_label));
    EXPECT_FALSE(m_hsm->has_key("otpbox-card-kdk-v2"));

    const auto listed = m_hsm->list_keys();
    ASSERT_EQ(listed.size(), 2u);
    for (const auto& key : listed) {
        EXPECT_TRUE(key.sensitive) << key.label;
        EXPECT_FALSE(key.extractable) << key.label;
        EXPECT_FALSE(key.id.empty()) << key.label;
        EXPECT_EQ(key.kind, key.label == aes_label ? KeyKind::aes_256 : KeyKind::hmac_sha256);
    }
    EXPECT_EQ(testing::read_key_value_rv(m_config, hmac_label), CKR_ATTRIBUTE_SENSITIVE);
    EXPECT_EQ(testing::read_key_value_rv(m_config, aes_label), CKR_ATTRIBUTE_SENSITIVE);
}

TEST_F(HsmOperations, GenerateKey_RefusesDuplicateLabel) {
    m_hsm->generate_secret_key("dup", KeyKind::hmac_sha256);
    EXPECT_THROW(m_hsm->generate_secret_key("dup", KeyKind::aes_256), HsmError);
    EXPECT_EQ(m_hsm->list_keys().size(), 1u);
}

// Two keys under one label are never picked from: which one a lookup finds
// first is the module's choice, and two processes could choose differently.
TEST_F(HsmOperations, Lookup_TwoKeysOfOneLabelFailNamingTheLabel) {
    const auto label = keys::versioned(keys::kCardKdk, 2);
    m_hsm->generate_secret_key(label, KeyKind::hmac_sha256);
    testing::create_hmac_key(m_config, label);
    try {
        (void)m_hsm->hmac_sha256(label, to_bytes("card"));
        ADD_FAILURE() << "a key was picked";
    } catch (const HsmError& error) {
        EXPECT_NE(std::string(error.what()).find("more than one object"), std::string::npos)
            << error.what();
        EXPECT_NE(std::string(error.what()).find(label), std::string::npos) << error.what();
        EXPECT_EQ(error.fault(), Fault::data);
    }
    EXPECT_THROW((void)m_hsm->has_key(label), HsmError);
}

// A key pair's halves share their label, each with a class of its own.
TEST_F(HsmOperations, Lookup_AKeyPairsHalvesAreNoTwins) {
    m_hsm->generate_key_pair("pair", KeyKind::ec_p256);
    m_hsm->generate_key_pair("other", KeyKind::ec_p256);
    EXPECT_TRUE(m_hsm->has_key("pair"));
    EXPECT_FALSE(m_hsm->public_key_der("other").empty());
    // Two public keys of one label are twins.
    testing::copy_object(m_config, "pair", CKO_PUBLIC_KEY);
    EXPECT_THROW((void)m_hsm->public_key_der("pair"), HsmError);
}

TEST_F(HsmOperations, Hmac_ConcurrentFromFourThreads) {
    const auto label = keys::versioned(keys::kAuditMac, 1);
    m_hsm->generate_secret_key(label, KeyKind::hmac_sha256);
    const auto data = to_bytes("row");
    const auto expected = m_hsm->hmac_sha256(label, data);

    std::atomic<int> matches{0};
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 50; ++i) {
                try {
                    if (m_hsm->hmac_sha256(label, data) == expected) {
                        ++matches;
                    }
                } catch (const HsmError&) {
                    ++failures;
                }
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(matches.load(), 200);
}

TEST(HsmPool_SmallPool, FourThreadsShareTwoSessions) {
    SoftHsmToken token;
    auto config = config_for(token);
    config.max_sessions = 2;
    const auto hsm = Hsm::open(config);
    hsm->generate_secret_key("mac-v1", KeyKind::hmac_sha256);
    const auto data = to_bytes("data");
    const auto expected = hsm->hmac_sha256("mac-v1", data);
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 100; ++i) {
                if (hsm->hmac_sha256("mac-v1", data) != expected) {
                    ++wrong;
                }
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace otpbox::hsm
