// Every key rotates: after a new version appears in the token, new records
// use it and name it, and records of the old version still open and verify.

#include <gtest/gtest.h>

#include "service_fixture.hpp"

namespace otpbox::firmware {
namespace {

using testing::ServiceFixture;

class KeyRotation : public ::testing::Test {
  protected:
    void rotate(std::string_view base, hsm::KeyKind kind) {
        f.hsm->generate_secret_key(hsm::keys::versioned(base, 2), kind);
        f.secrets->forget_key_versions();
    }

    ServiceFixture f;
};

TEST_F(KeyRotation, OtpRecordsOfBothVersionsVerify) {
    const auto old_record = f.secrets->otp_record("challenge-1", "123456");
    EXPECT_EQ(old_record.size(), 32u);
    rotate(hsm::keys::kOtpMac, hsm::KeyKind::hmac_sha256);
    EXPECT_EQ(f.secrets->key_version(hsm::keys::kOtpMac), 2u);

    const auto new_record = f.secrets->otp_record("challenge-2", "654321");
    ASSERT_EQ(new_record.size(), 33u);
    EXPECT_EQ(new_record[0], 2);
    EXPECT_TRUE(f.secrets->otp_matches("challenge-1", "123456", old_record));
    EXPECT_TRUE(f.secrets->otp_matches("challenge-2", "654321", new_record));
    EXPECT_FALSE(f.secrets->otp_matches("challenge-2", "654322", new_record));

    // A record that names another version does not verify under it.
    auto relabelled = new_record;
    relabelled[0] = 1;
    EXPECT_FALSE(f.secrets->otp_matches("challenge-2", "654321", relabelled));
    relabelled[0] = 7;
    EXPECT_FALSE(f.secrets->otp_matches("challenge-2", "654321", relabelled));
}

TEST_F(KeyRotation, SealedDataOfBothVersionsOpens) {
    const auto old_phone = f.secrets->seal_phone("alice", "+491701234567");
    const auto old_pin = f.secrets->seal_secret("sim-pin:modem0", "2468");
    const auto sealer = f.secrets->sms_sealer();
    const auto old_sms = sealer->seal("+491701234567\ncode 123456", "sms-1");
    rotate(hsm::keys::kDataEnc, hsm::KeyKind::aes_256);

    const auto new_phone = f.secrets->seal_phone("bob", "+491709876543");
    ASSERT_GT(new_phone.size(), 2u);
    EXPECT_EQ(new_phone[0], 0xA7);
    EXPECT_EQ(new_phone[1], 2);
    const auto new_sms = sealer->seal("+491709876543\ncode 654321", "sms-2");
    EXPECT_EQ(new_sms[1], 2) << "the SMS queue's sealer follows the rotation too";

    EXPECT_EQ(f.secrets->open_phone("alice", old_phone), "+491701234567");
    EXPECT_EQ(f.secrets->open_phone("bob", new_phone), "+491709876543");
    EXPECT_EQ(f.secrets->open_secret("sim-pin:modem0", old_pin)->view(), "2468");
    EXPECT_EQ(sealer->open(old_sms, "sms-1"), "+491701234567\ncode 123456");
    EXPECT_EQ(sealer->open(new_sms, "sms-2"), "+491709876543\ncode 654321");

    // Bound to their user and untouchable, whatever the version.
    EXPECT_FALSE(f.secrets->open_phone("alice", new_phone));
    auto changed = new_phone;
    changed.back() ^= 1;
    EXPECT_FALSE(f.secrets->open_phone("bob", changed));
    auto unknown_version = new_phone;
    unknown_version[1] = 9;
    EXPECT_FALSE(f.secrets->open_phone("bob", unknown_version));
}

TEST_F(KeyRotation, PhoneIndexNamesItsVersion) {
    const auto old_index = f.secrets->phone_index("+491701234567");
    EXPECT_EQ(old_index.size(), 64u);
    rotate(hsm::keys::kDataIndex, hsm::KeyKind::hmac_sha256);
    const auto new_index = f.secrets->phone_index("+491701234567");
    EXPECT_EQ(new_index.substr(0, 3), "v2:");
    EXPECT_NE(new_index.substr(3), old_index);
}

TEST_F(KeyRotation, AuditChainSpansTheRotationAndPseudonymsStay) {
    const auto pseudonym = f.secrets->pseudonym("alice");
    f.audit->record({"technician", "test.before", pseudonym, "ok"}, f.clock.now());
    rotate(hsm::keys::kAuditMac, hsm::KeyKind::hmac_sha256);
    f.audit->record({"technician", "test.after", pseudonym, "ok"}, f.clock.now());
    EXPECT_EQ(f.secrets->pseudonym("alice"), pseudonym);

    auto versions = f.database->prepare("SELECT key_version FROM audit ORDER BY seq");
    ASSERT_TRUE(versions.step());
    EXPECT_EQ(versions.integer(0), 1);
    ASSERT_TRUE(versions.step());
    EXPECT_EQ(versions.integer(0), 2);

    const auto anchor = f.audit->latest();
    EXPECT_TRUE(f.audit->verify(anchor).intact) << f.audit->verify(anchor).problem;

    // A row moved to the other key version no longer verifies.
    f.database->execute("UPDATE audit SET key_version = 1 WHERE seq = 2");
    const auto verdict = f.audit->verify(anchor);
    EXPECT_FALSE(verdict.intact);
    EXPECT_NE(verdict.problem.find("row 2"), std::string::npos) << verdict.problem;
}

}  // namespace
}  // namespace otpbox::firmware
