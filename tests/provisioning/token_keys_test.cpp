#include <gtest/gtest.h>

#include <filesystem>

#include "otpbox/firmware/config.hpp"
#include "otpbox/hsm/error.hpp"
#include "otpbox/provisioning/dev_files.hpp"
#include "otpbox/provisioning/keys.hpp"
#include "otpbox/provisioning/token.hpp"
#include "test_support.hpp"

namespace {

namespace fs = std::filesystem;
namespace prov = otpbox::provisioning;
namespace hsm = otpbox::hsm;
using otpbox::test::TempDir;

// A SoftHSM2 with no token yet, in its own folder.
struct FreshSoftHsm {
    TempDir dir;
    hsm::ModuleSpec module;

    FreshSoftHsm() {
        const auto report = prov::write_dev_hsm_files(dir.path());
        module = {otpbox::test::SoftHsmToken::module_path(),
                  {{"SOFTHSM2_CONF", (dir.path() / "hsm" / "softhsm2.conf").string()}}};
    }
    [[nodiscard]] std::string pin(const char* name) const {
        return prov::read_secret_file(dir.path() / "hsm" / name);
    }
    [[nodiscard]] hsm::HsmConfig config() const {
        hsm::HsmConfig config;
        config.module_path = module.module_path;
        config.token_label = "otpbox";
        config.pin_file = dir.path() / "hsm" / "user.pin";
        config.environment = module.environment;
        return config;
    }
};

}  // namespace

TEST(InitToken_Fresh, CreatesOnceThenPresent) {
    FreshSoftHsm soft;
    EXPECT_FALSE(hsm::token_exists(soft.module, "otpbox"));
    EXPECT_EQ(prov::init_token(soft.module, "otpbox", soft.pin("so.pin"), soft.pin("user.pin")),
              prov::StepResult::created);
    EXPECT_TRUE(hsm::token_exists(soft.module, "otpbox"));
    EXPECT_EQ(prov::init_token(soft.module, "otpbox", soft.pin("so.pin"), soft.pin("user.pin")),
              prov::StepResult::present);
}

TEST(CreateKeys_NewToken, CreatesAllFiveThenNone) {
    FreshSoftHsm soft;
    ASSERT_EQ(prov::init_token(soft.module, "otpbox", soft.pin("so.pin"), soft.pin("user.pin")),
              prov::StepResult::created);

    const auto first = prov::create_keys(soft.config());
    ASSERT_EQ(first.size(), 5u);
    for (const auto& line : first) {
        EXPECT_EQ(line.result, prov::StepResult::created) << line.item;
    }
    const auto second = prov::create_keys(soft.config());
    ASSERT_EQ(second.size(), 5u);
    for (const auto& line : second) {
        EXPECT_EQ(line.result, prov::StepResult::present) << line.item;
    }
}

TEST(CreateKeys_NewToken, KeysAreSensitiveAndNotExtractable) {
    FreshSoftHsm soft;
    ASSERT_EQ(prov::init_token(soft.module, "otpbox", soft.pin("so.pin"), soft.pin("user.pin")),
              prov::StepResult::created);
    (void)prov::create_keys(soft.config());

    const auto opened = hsm::Hsm::open(soft.config());
    const auto keys = opened->list_keys();
    for (const auto& wanted : prov::appliance_keys()) {
        const auto found = std::find_if(keys.begin(), keys.end(),
                                        [&](const auto& key) { return key.label == wanted.label; });
        ASSERT_NE(found, keys.end()) << wanted.label;
        EXPECT_EQ(found->kind, wanted.kind) << wanted.label;
        EXPECT_TRUE(found->sensitive) << wanted.label;
        EXPECT_FALSE(found->extractable) << wanted.label;
    }
}

TEST(CreateKeys_NoToken, ThrowsHsmError) {
    FreshSoftHsm soft;
    EXPECT_THROW((void)prov::create_keys(soft.config()), hsm::HsmError);
}

TEST(DevHsmFiles_Pins, ArePrivateDigitsAndKeptOnTheSecondRun) {
    TempDir dir;
    (void)prov::write_dev_hsm_files(dir.path());
    const auto pin = prov::read_secret_file(dir.path() / "hsm" / "user.pin");
    EXPECT_EQ(pin.find_first_not_of("0123456789"), std::string::npos);
    EXPECT_GE(pin.size(), 6u);
    EXPECT_EQ(fs::status(dir.path() / "hsm" / "user.pin").permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);
    EXPECT_EQ(fs::status(dir.path() / "hsm" / "so.pin").permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);
    const auto again = prov::write_dev_hsm_files(dir.path());
    for (const auto& line : again) {
        EXPECT_EQ(line.result, prov::StepResult::present) << line.item;
    }
    EXPECT_EQ(prov::read_secret_file(dir.path() / "hsm" / "user.pin"), pin);
}

TEST(DevConfig_Written, LoadsWithTheLoader) {
    TempDir dir;
    prov::DevConfigOptions options;
    options.port = 18443;
    EXPECT_EQ(prov::write_dev_config(dir.path(), options), prov::StepResult::created);
    EXPECT_EQ(prov::write_dev_config(dir.path(), options), prov::StepResult::present);

    const auto config = otpbox::firmware::load_config(dir.path() / "otpbox.toml");
    EXPECT_EQ(config.api.port, 18443);
    EXPECT_EQ(config.hsm.token_label, "otpbox");
    EXPECT_EQ(config.hsm.pin_file, dir.path() / "hsm" / "user.pin");
    ASSERT_EQ(config.api.clients.size(), 2u);
    EXPECT_EQ(config.api.clients[0].subject, "CN=otpbox-portal,O=otpbox development");
    EXPECT_EQ(config.api.clients[1].subject, "CN=otpbox-monitor,O=otpbox development");
    ASSERT_EQ(config.modems.size(), 1u);
}
