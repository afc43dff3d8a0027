#include <gtest/gtest.h>

#include <algorithm>
#include <ios>

#include "hsm_test_support.hpp"
#include "otpbox/hsm/hsm.hpp"

namespace otpbox::hsm {
namespace {

using otpbox::test::SoftHsmToken;
using testing::config_for;

bool offers(const std::vector<CK_MECHANISM_TYPE>& mechanisms, CK_MECHANISM_TYPE wanted) {
    return std::ranges::find(mechanisms, wanted) != mechanisms.end();
}

TEST(HsmMechanisms, SoftHsm2_ListsWhatOtpboxNeeds) {
    SoftHsmToken token;
    const auto hsm = Hsm::open(config_for(token));
    const auto mechanisms = hsm->mechanisms();
    for (const auto needed : {CKM_GENERIC_SECRET_KEY_GEN, CKM_SHA256_HMAC, CKM_AES_KEY_GEN,
                              CKM_AES_GCM, CKM_EC_KEY_PAIR_GEN, CKM_ECDSA}) {
        EXPECT_TRUE(offers(mechanisms, needed)) << "mechanism 0x" << std::hex << needed;
    }
}

TEST(HsmMechanisms, SoftHsm2_LeavesOutWhatItLacks) {
    SoftHsmToken token;
    const auto hsm = Hsm::open(config_for(token));
    // SoftHSM2 2.6 has no Skipjack: a mechanism no modern token offers.
    EXPECT_FALSE(offers(hsm->mechanisms(), CKM_SKIPJACK_KEY_GEN));
}

}  // namespace
}  // namespace otpbox::hsm
