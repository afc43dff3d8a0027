#include <gtest/gtest.h>

#include "otpbox/hsm/error.hpp"

namespace otpbox::hsm {
namespace {

TEST(Classify_MapsReturnValues, ByMeaning) {
    EXPECT_EQ(classify(CKR_OK), Fault::none);
    EXPECT_EQ(classify(CKR_SESSION_HANDLE_INVALID), Fault::session_lost);
    EXPECT_EQ(classify(CKR_SESSION_CLOSED), Fault::session_lost);
    EXPECT_EQ(classify(CKR_DEVICE_REMOVED), Fault::token_gone);
    EXPECT_EQ(classify(CKR_TOKEN_NOT_PRESENT), Fault::token_gone);
    EXPECT_EQ(classify(CKR_DEVICE_ERROR), Fault::token_gone);
    EXPECT_EQ(classify(CKR_USER_NOT_LOGGED_IN), Fault::not_logged_in);
    EXPECT_EQ(classify(CKR_PIN_INCORRECT), Fault::pin);
    EXPECT_EQ(classify(CKR_PIN_LOCKED), Fault::pin);
    EXPECT_EQ(classify(CKR_ENCRYPTED_DATA_INVALID), Fault::data);
    EXPECT_EQ(classify(CKR_MECHANISM_INVALID), Fault::other);
    EXPECT_EQ(classify(0x8000'1234UL), Fault::other);
}

TEST(CkrName_NamesValues, KnownAndUnknown) {
    EXPECT_EQ(ckr_name(CKR_DEVICE_REMOVED), "CKR_DEVICE_REMOVED");
    EXPECT_EQ(ckr_name(CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT");
    EXPECT_EQ(ckr_name(0x8000'1234UL), "CKR_0x80001234");
}

TEST(HsmError_CarriesCategoryAndFault, FromReturnValue) {
    const HsmError error(CKR_DEVICE_REMOVED, "C_Sign failed");
    EXPECT_EQ(error.code().category(), ckr_category());
    EXPECT_EQ(error.code().value(), static_cast<int>(CKR_DEVICE_REMOVED));
    EXPECT_EQ(error.code().message(), "CKR_DEVICE_REMOVED");
    EXPECT_STREQ(ckr_category().name(), "pkcs11");
    EXPECT_EQ(error.fault(), Fault::token_gone);
    EXPECT_TRUE(error.unavailable());
}

TEST(HsmError_Unavailable, OnlyForTransientFaults) {
    EXPECT_TRUE(HsmError(Fault::stalled, "x").unavailable());
    EXPECT_TRUE(HsmError(Fault::token_gone, "x").unavailable());
    EXPECT_FALSE(HsmError(Fault::pin, "x").unavailable());
    EXPECT_FALSE(HsmError(Fault::data, "x").unavailable());
    EXPECT_FALSE(HsmError(Fault::missing_key, "x").unavailable());
    EXPECT_EQ(fault_name(Fault::stalled), "stalled");
}

TEST(HsmError_FromFault, OwnCategoryAndPlainMessage) {
    const HsmError error(Fault::config, "no initialised token labelled \"x\"");
    EXPECT_EQ(error.code().category(), fault_category());
    EXPECT_EQ(error.code().value(), static_cast<int>(Fault::config));
    EXPECT_EQ(error.code().message(), "config");
    EXPECT_STREQ(error.what(), "no initialised token labelled \"x\"");
    EXPECT_STREQ(HsmError(CKR_PIN_INCORRECT, "login failed").what(), "login failed");
}

}  // namespace
}  // namespace otpbox::hsm
