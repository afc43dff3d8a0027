#include <gtest/gtest.h>
#include <sys/stat.h>

#include "hsm_test_support.hpp"
#include "otpbox/hsm/error.hpp"
#include "otpbox/hsm/hsm.hpp"

namespace otpbox::hsm {
namespace {

using otpbox::test::SoftHsmToken;
using otpbox::test::TempDir;
using otpbox::test::write_file;
using testing::config_for;

// Runs f, which must throw HsmError, and returns the error.
template <class F>
HsmError expect_hsm_error(F&& f) {
    try {
        f();
    } catch (const HsmError& error) {
        return error;
    }
    ADD_FAILURE() << "no HsmError thrown";
    return HsmError(Fault::none, "none");
}

TEST(HsmOpen_LogsInAndServes, OpensTokenByLabel) {
    SoftHsmToken token;
    const auto hsm = Hsm::open(config_for(token));
    const auto health = hsm->health();
    EXPECT_TRUE(health.ok);
    EXPECT_EQ(health.state, "ok");
    EXPECT_EQ(hsm->random_bytes(16).size(), 16u);
}

TEST(HsmOpen_RefusesLoosePinFile, GroupReadable) {
    SoftHsmToken token;
    auto config = config_for(token);
    ASSERT_EQ(::chmod(config.pin_file.c_str(), 0640), 0);
    const auto error = expect_hsm_error([&] { (void)Hsm::open(config); });
    EXPECT_EQ(error.fault(), Fault::config);
    EXPECT_NE(std::string(error.what()).find("chmod 600"), std::string::npos);
    EXPECT_FALSE(error.unavailable());
}

TEST(HsmOpen_RefusesLoosePinFile, OthersWritable) {
    SoftHsmToken token;
    const auto config = config_for(token);
    ASSERT_EQ(::chmod(config.pin_file.c_str(), 0602), 0);
    EXPECT_EQ(expect_hsm_error([&] { (void)read_pin_file(config.pin_file); }).fault(),
              Fault::config);
}

TEST(ReadPinFile_StripsNewline, OnlyTheTrailingOne) {
    TempDir dir;
    write_file(dir.path() / "pin", "12 34\n", 0600);
    EXPECT_EQ(read_pin_file(dir.path() / "pin").view(), "12 34");
}

TEST(ReadPinFile_RefusesEmptyOrMissing, BothConfigFaults) {
    TempDir dir;
    write_file(dir.path() / "pin", "\n", 0600);
    EXPECT_EQ(expect_hsm_error([&] { (void)read_pin_file(dir.path() / "pin"); }).fault(),
              Fault::config);
    EXPECT_EQ(expect_hsm_error([&] { (void)read_pin_file(dir.path() / "none"); }).fault(),
              Fault::config);
}

TEST(HsmOpen_RefusesWrongPin, PinFaultNoRetry) {
    SoftHsmToken token;
    auto config = config_for(token);
    write_file(token.dir() / "wrong.pin", "999999\n", 0600);
    config.pin_file = token.dir() / "wrong.pin";
    // One attempt only: a real token counts wrong PINs and locks.
    const auto error = expect_hsm_error([&] { (void)Hsm::open(config); });
    EXPECT_EQ(error.fault(), Fault::pin);
    EXPECT_EQ(error.code().value(), static_cast<int>(CKR_PIN_INCORRECT));
    EXPECT_NE(std::string(error.what()).find("CKR_PIN_INCORRECT"), std::string::npos);
    EXPECT_EQ(std::string(error.what()).find("999999"), std::string::npos);
}

TEST(HsmOpen_MissingModule, ClearConfigError) {
    SoftHsmToken token;
    auto config = config_for(token);
    config.module_path = "/nonexistent/libpkcs11.so";
    const auto error = expect_hsm_error([&] { (void)Hsm::open(config); });
    EXPECT_EQ(error.fault(), Fault::config);
    EXPECT_NE(std::string(error.what()).find("/nonexistent/libpkcs11.so"), std::string::npos);
}

TEST(HsmOpen_NotAModule, ClearConfigError) {
    SoftHsmToken token;
    auto config = config_for(token);
    config.module_path = "libc.so.6";
    const auto error = expect_hsm_error([&] { (void)Hsm::open(config); });
    EXPECT_EQ(error.fault(), Fault::config);
    EXPECT_NE(std::string(error.what()).find("not a PKCS#11 module"), std::string::npos);
}

TEST(HsmOpen_MissingTokenLabel, ClearConfigError) {
    SoftHsmToken token;
    auto config = config_for(token);
    config.token_label = "no-such-token";
    const auto error = expect_hsm_error([&] { (void)Hsm::open(config); });
    EXPECT_EQ(error.fault(), Fault::config);
    EXPECT_NE(std::string(error.what()).find("no-such-token"), std::string::npos);
}

}  // namespace
}  // namespace otpbox::hsm
