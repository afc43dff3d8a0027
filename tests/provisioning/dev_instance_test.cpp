// The development instance's provisioning steps, in-process: a fresh
// instance, and a normal run over a factory-fresh one a technician has
// provisioned at the console.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "console/password.hpp"
#include "otpbox/firmware/config.hpp"
#include "otpbox/firmware/secrets.hpp"
#include "otpbox/hsm/hsm.hpp"
#include "otpbox/provisioning/dev_instance.hpp"
#include "otpbox/provisioning/token.hpp"
#include "test_support.hpp"

namespace {

namespace fs = std::filesystem;
namespace prov = otpbox::provisioning;
using otpbox::test::TempDir;

void quiet(std::string_view, std::string_view, prov::StepResult) {}

TEST(DevInstance_Fresh, KeepsTheServerKeyInTheTokenAndNoKeyFile) {
    TempDir dir;
    prov::provision_dev(dir.path(), {}, quiet);

    EXPECT_FALSE(fs::exists(dir.path() / "pki/server.key"));
    EXPECT_TRUE(fs::exists(dir.path() / "pki/server.crt"));
    const auto config = otpbox::firmware::load_config(dir.path() / "otpbox.toml");
    ASSERT_EQ(config.api.key_label, "otpbox-tls-v1");
    const auto token = otpbox::hsm::Hsm::open(config.hsm);
    EXPECT_TRUE(token->has_key("otpbox-tls-v1"));
    // The certificate is kept in the token beside its pair, too.
    const auto der =
        otpbox::test::run_command("openssl x509 -in '" + (dir.path() / "pki/server.crt").string() +
                                  "' -outform DER | od -An -v -tx1 | tr -d ' \\n'");
    const auto stored = token->stored_certificate("otpbox-tls-v1");
    ASSERT_TRUE(stored);
    EXPECT_EQ(otpbox::firmware::to_hex(*stored), der.output);
    EXPECT_TRUE(prov::console::check_password(
        dir.path() / "console.passwd",
        otpbox::test::read_file(dir.path() / "console.pass").substr(0, 16)));

    // Again: everything is present, nothing is made anew.
    std::vector<std::string> created;
    prov::provision_dev(dir.path(), {},
                        [&](std::string_view, std::string_view item, prov::StepResult result) {
                            if (result == prov::StepResult::created) {
                                created.emplace_back(item);
                            }
                        });
    EXPECT_TRUE(created.empty()) << created.front();
}

TEST(DevInstance_AfterFactory, KeepsWhatTheTechnicianChose) {
    TempDir dir;
    prov::DevConfigOptions factory;
    factory.factory = true;
    prov::provision_dev(dir.path(), factory, quiet);
    EXPECT_FALSE(fs::exists(dir.path() / "console.passwd"));
    EXPECT_FALSE(fs::exists(dir.path() / "hsm/user.pin"));
    EXPECT_FALSE(fs::exists(dir.path() / "pki/server.crt"));

    // What the console does at first boot.
    const std::string password = "technician-password-1";
    prov::console::set_password(dir.path() / "console.passwd", password);
    const auto config = otpbox::firmware::load_config(dir.path() / "otpbox.toml");
    (void)prov::init_token({config.hsm.module_path, config.hsm.environment}, config.hsm.token_label,
                           "87654321", "24681357");
    otpbox::test::write_file(dir.path() / "hsm/user.pin", "24681357\n", 0600);

    prov::provision_dev(dir.path(), {}, quiet);
    EXPECT_TRUE(prov::console::check_password(dir.path() / "console.passwd", password));
    EXPECT_FALSE(fs::exists(dir.path() / "console.pass"));
    EXPECT_FALSE(fs::exists(dir.path() / "hsm/so.pin")) << "a PIN file the token does not know";
    EXPECT_EQ(otpbox::test::read_file(dir.path() / "hsm/user.pin"), "24681357\n");
    EXPECT_FALSE(fs::exists(dir.path() / "pki/server.key"));
}

}  // namespace
