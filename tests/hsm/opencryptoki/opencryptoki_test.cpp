#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <sstream>

#include "../hsm_test_support.hpp"
#include "otpbox/hsm/error.hpp"
#include "otpbox/hsm/hsm.hpp"
#include "otpbox/hsm/key_labels.hpp"
#include "otpbox/hsm/tls_key.hpp"

// The second module: opencryptoki's soft token, started and initialised by
// fixture.sh (beside this file) once per run of this program. That token is
// one per machine, so ctest runs these tests serially, and a lock file keeps
// test programs of other build directories from sharing it at the same time.
// What the token lacks is found by asking it, and skipped with the reason.

namespace otpbox::hsm {
namespace {

using otpbox::test::run_command;
using testing::to_bytes;

const std::string kFixture = OTPBOX_SOURCE_DIR "/tests/hsm/opencryptoki/fixture.sh";
const std::string kStateDir = OTPBOX_BINARY_DIR "/opencryptoki-fixture";
const std::string kMachineLock = "/run/lock/otpbox-opencryptoki-tests.lock";
const std::string kLabel = "otpbox-ock";

// The key=value lines fixture.sh start prints.
std::map<std::string, std::string> parse_fixture_output(const std::string& output) {
    std::map<std::string, std::string> values;
    std::istringstream lines(output);
    std::string line;
    while (std::getline(lines, line)) {
        if (const auto equals = line.find('='); equals != std::string::npos) {
            values[line.substr(0, equals)] = line.substr(equals + 1);
        }
    }
    return values;
}

class OpencryptokiSoftToken : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        s_lock = ::open(kMachineLock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (s_lock >= 0) {
            ::flock(s_lock, LOCK_EX);
        }
        const auto result = run_command(kFixture + " start " + kStateDir + " " + kLabel + " 2>&1");
        s_status = result.status;
        s_output = result.output;
        s_fixture = parse_fixture_output(result.output);
    }

    static void TearDownTestSuite() {
        (void)run_command(kFixture + " stop " + kStateDir + " 2>&1");
        if (s_lock >= 0) {
            ::close(s_lock);
            s_lock = -1;
        }
    }

    void SetUp() override {
        ASSERT_EQ(s_status, 0) << "fixture.sh start failed:\n" << s_output;
        m_config.module_path = s_fixture.at("module");
        m_config.token_label = s_fixture.at("label");
        m_config.pin_file = s_fixture.at("pin_file");
        m_config.call_timeout = std::chrono::seconds(10);
        m_hsm = Hsm::open(m_config);
        m_mechanisms = m_hsm->mechanisms();
    }

    [[nodiscard]] bool offers(CK_MECHANISM_TYPE mechanism) const {
        return std::ranges::find(m_mechanisms, mechanism) != m_mechanisms.end();
    }

    static inline int s_lock = -1;
    static inline int s_status = -1;
    static inline std::string s_output;
    static inline std::map<std::string, std::string> s_fixture;

    HsmConfig m_config;
    std::shared_ptr<Hsm> m_hsm;
    std::vector<CK_MECHANISM_TYPE> m_mechanisms;
};

TEST_F(OpencryptokiSoftToken, Open_HealthyAndProbed) {
    EXPECT_TRUE(m_hsm->health().ok) << m_hsm->health().detail;
    // The HMAC keys are the least otpbox needs of any module.
    EXPECT_TRUE(offers(CKM_GENERIC_SECRET_KEY_GEN));
    EXPECT_TRUE(offers(CKM_SHA256_HMAC));
}

TEST_F(OpencryptokiSoftToken, RandomBytes_DistinctAndRightLength) {
    for (const std::size_t count : {std::size_t{1}, std::size_t{12}, std::size_t{1000}}) {
        EXPECT_EQ(m_hsm->random_bytes(count).size(), count);
    }
    const auto first = m_hsm->random_bytes(32);
    const auto second = m_hsm->random_bytes(32);
    EXPECT_NE(first, second);
    EXPECT_NE(first, std::vector<std::uint8_t>(32, 0));
}

TEST_F(OpencryptokiSoftToken, HmacSha256_VerifiesItsOwnMacOnly) {
    const std::string label = "ock-hmac-verify-v1";
    m_hsm->generate_secret_key(label, KeyKind::hmac_sha256);
    const auto data = to_bytes("challenge-1|123456");
    auto mac = m_hsm->hmac_sha256(label, data);
    ASSERT_EQ(mac.size(), 32u);
    EXPECT_EQ(m_hsm->hmac_sha256(label, data), mac);
    EXPECT_TRUE(m_hsm->hmac_sha256_verify(label, data, mac));
    EXPECT_FALSE(m_hsm->hmac_sha256_verify(label, to_bytes("challenge-1|123457"), mac));
    mac[0] ^= 0x01;
    EXPECT_FALSE(m_hsm->hmac_sha256_verify(label, data, mac));
}

TEST_F(OpencryptokiSoftToken, HmacSha256_TwoKeysGiveDifferentMacs) {
    m_hsm->generate_secret_key("ock-hmac-a-v1", KeyKind::hmac_sha256);
    m_hsm->generate_secret_key("ock-hmac-b-v1", KeyKind::hmac_sha256);
    const auto data = to_bytes("row");
    EXPECT_NE(m_hsm->hmac_sha256("ock-hmac-a-v1", data), m_hsm->hmac_sha256("ock-hmac-b-v1", data));
}

TEST_F(OpencryptokiSoftToken, GeneratedKeys_SensitiveNotExtractable) {
    const std::string hmac_label = "ock-attributes-hmac-v1";
    m_hsm->generate_secret_key(hmac_label, KeyKind::hmac_sha256);
    std::vector<std::pair<std::string, KeyKind>> made{{hmac_label, KeyKind::hmac_sha256}};
    if (offers(CKM_AES_KEY_GEN)) {
        m_hsm->generate_secret_key("ock-attributes-aes-v1", KeyKind::aes_256);
        made.emplace_back("ock-attributes-aes-v1", KeyKind::aes_256);
    }
    EXPECT_THROW(m_hsm->generate_secret_key(hmac_label, KeyKind::hmac_sha256), HsmError);

    const auto listed = m_hsm->list_keys();
    for (const auto& [label, kind] : made) {
        const auto key = std::ranges::find(listed, label, &KeyInfo::label);
        ASSERT_NE(key, listed.end()) << label;
        EXPECT_EQ(key->kind, kind) << label;
        EXPECT_TRUE(key->sensitive) << label;
        EXPECT_FALSE(key->extractable) << label;
        EXPECT_EQ(key->id.size(), 8u) << label;
        EXPECT_EQ(testing::read_key_value_rv(m_config, label), CKR_ATTRIBUTE_SENSITIVE) << label;
    }
}

TEST_F(OpencryptokiSoftToken, AesGcm_RoundTripWhenOffered) {
    if (!offers(CKM_AES_GCM)) {
        GTEST_SKIP() << "opencryptoki soft token lacks CKM_AES_GCM";
    }
    const std::string label = "ock-gcm-v1";
    m_hsm->generate_secret_key(label, KeyKind::aes_256);
    const auto plain = to_bytes("+491701234567");
    const auto aad = to_bytes("user-42");
    const auto sealed = m_hsm->aes_gcm_encrypt(label, plain, aad);
    EXPECT_EQ(sealed.size(), 12 + plain.size() + 16);
    const auto opened = m_hsm->aes_gcm_decrypt(label, sealed, aad);
    ASSERT_TRUE(opened.has_value());
    EXPECT_TRUE(std::ranges::equal(opened->bytes(), plain));
    EXPECT_FALSE(m_hsm->aes_gcm_decrypt(label, sealed, to_bytes("user-43")).has_value());
}

TEST_F(OpencryptokiSoftToken, EcP256_CsrVerifiesWhenOffered) {
    for (const auto& [mechanism, name] : {std::pair{CKM_EC_KEY_PAIR_GEN, "CKM_EC_KEY_PAIR_GEN"},
                                          std::pair{CKM_ECDSA, "CKM_ECDSA"}}) {
        if (!offers(mechanism)) {
            GTEST_SKIP() << "opencryptoki soft token lacks " << name;
        }
    }
    const auto label = keys::versioned(keys::kTls, 1);
    m_hsm->generate_key_pair(label, KeyKind::ec_p256);
    const auto pem =
        make_csr_pem(*hsm_private_key(m_hsm, label), *testing::name_of({{"CN", "otpbox.test"}}));
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    X509_REQ* request = PEM_read_bio_X509_REQ(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    ASSERT_NE(request, nullptr);
    EXPECT_EQ(X509_REQ_verify(request, X509_REQ_get0_pubkey(request)), 1);
    X509_REQ_free(request);
}

}  // namespace
}  // namespace otpbox::hsm
