// The [console] table of otpbox.toml: a value of the wrong type is refused
// by name instead of leaving the default in force.

#include <gtest/gtest.h>

#include <string>

#include "console/appliance.hpp"
#include "test_support.hpp"

namespace otpbox::provisioning::console {
namespace {

using otpbox::test::TempDir;
using otpbox::test::write_file;

TEST(ConsoleSettings_Load, TakesTheTable) {
    TempDir dir;
    const auto file = dir.path() / "otpbox.toml";
    write_file(file, "[console]\npassword_file = \"secret/console.passwd\"\nidle_seconds = 60\n");
    const auto settings = load_console_settings(file);
    EXPECT_EQ(settings.password_file, dir.path() / "secret/console.passwd");
    EXPECT_EQ(settings.idle, std::chrono::seconds(60));
}

TEST(ConsoleSettings_Load, RefusesWrongTypesNamingTheKey) {
    TempDir dir;
    const auto file = dir.path() / "otpbox.toml";
    const auto refused_naming = [&](const std::string& text, const std::string& key) {
        write_file(file, "[console]\n" + text);
        try {
            (void)load_console_settings(file);
            ADD_FAILURE() << "accepted: " << text;
        } catch (const firmware::ConfigError& error) {
            EXPECT_NE(std::string(error.what()).find(key), std::string::npos) << error.what();
        }
    };
    refused_naming("idle_seconds = \"60\"\n", "console.idle_seconds");
    refused_naming("idle_seconds = 60.0\n", "console.idle_seconds");
    refused_naming("idle_seconds = 4\n", "console.idle_seconds");
    refused_naming("password_file = 1\n", "console.password_file");
    refused_naming("password_file = \"\"\n", "console.password_file");
}

}  // namespace
}  // namespace otpbox::provisioning::console
