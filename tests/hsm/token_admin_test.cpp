#include <gtest/gtest.h>

#include "hsm_test_support.hpp"
#include "otpbox/hsm/error.hpp"
#include "otpbox/hsm/hsm.hpp"
#include "otpbox/hsm/token_admin.hpp"

namespace otpbox::hsm {
namespace {

using otpbox::test::TempDir;
using otpbox::test::write_file;

class TokenAdmin : public ::testing::Test {
  protected:
    TokenAdmin() {
        std::filesystem::create_directories(m_dir.path() / "tokens");
        write_file(m_dir.path() / "softhsm2.conf",
                   "directories.tokendir = " + (m_dir.path() / "tokens").string() +
                       "\nobjectstore.backend = file\nlog.level = ERROR\n");
        m_module.module_path = otpbox::test::SoftHsmToken::module_path();
        m_module.environment["SOFTHSM2_CONF"] = (m_dir.path() / "softhsm2.conf").string();
    }

    TempDir m_dir;
    ModuleSpec m_module;
};

TEST_F(TokenAdmin, InitToken_FreshConfThenLogin) {
    EXPECT_FALSE(token_exists(m_module, "otpbox"));
    init_token(m_module, "otpbox", "87654321", "246810");
    EXPECT_TRUE(token_exists(m_module, "otpbox"));
    EXPECT_FALSE(token_exists(m_module, "otpbox-other"));

    write_file(m_dir.path() / "user.pin", "246810\n", 0600);
    HsmConfig config;
    config.module_path = m_module.module_path;
    config.environment = m_module.environment;
    config.token_label = "otpbox";
    config.pin_file = m_dir.path() / "user.pin";
    const auto hsm = Hsm::open(config);
    EXPECT_TRUE(hsm->health().ok);
}

// SoftHSM2 takes PINs of 4 to 255 bytes and answers a longer SO PIN with
// CKR_PIN_INCORRECT; the lengths are checked first and named instead.
TEST_F(TokenAdmin, InitToken_APinOfAWrongLengthNamesTheLengths) {
    const auto lengths = new_token_pin_lengths(m_module);
    EXPECT_EQ(lengths.min, 4u);
    EXPECT_EQ(lengths.max, 255u);
    const auto refused = [&](const std::string& so_pin, const std::string& user_pin,
                             const std::string& which) {
        try {
            init_token(m_module, "otpbox", so_pin, user_pin);
            ADD_FAILURE() << "initialised with a " << which << " of the wrong length";
        } catch (const HsmError& error) {
            const std::string what = error.what();
            EXPECT_NE(what.find("the " + which + " must be 4 to 255 characters"), std::string::npos)
                << what;
            EXPECT_EQ(what.find("CKR_"), std::string::npos) << what;
        }
        EXPECT_FALSE(token_exists(m_module, "otpbox"));
    };
    refused(std::string(300, '1'), "246810", "SO PIN");
    refused("87654321", std::string(256, '2'), "user PIN");
    refused("123", "246810", "SO PIN");
    init_token(m_module, "otpbox", std::string(255, '1'), "2468");
    EXPECT_TRUE(token_exists(m_module, "otpbox"));
}

TEST_F(TokenAdmin, InitToken_SecondTokenGetsItsOwnSlot) {
    init_token(m_module, "first", "87654321", "246810");
    init_token(m_module, "second", "87654321", "246810");
    EXPECT_TRUE(token_exists(m_module, "first"));
    EXPECT_TRUE(token_exists(m_module, "second"));
}

TEST_F(TokenAdmin, InitToken_RefusesTooShortUserPin) {
    // SoftHSM2 wants 4 to 255 characters.
    try {
        init_token(m_module, "otpbox", "87654321", "12");
        FAIL() << "no error";
    } catch (const HsmError& error) {
        EXPECT_EQ(error.fault(), Fault::pin);
    }
}

}  // namespace
}  // namespace otpbox::hsm
