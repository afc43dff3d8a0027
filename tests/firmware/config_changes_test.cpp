// What a new reading of the configuration changes for a serving daemon: the
// TLS settings it reloads, and the keys it names as needing a restart.

#include "../../firmware/src/config_changes.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_support.hpp"

namespace otpbox::firmware::detail {
namespace {

using otpbox::test::TempDir;
using otpbox::test::write_file;

constexpr const char* kBase = R"toml(
[api]
port = 9443
ca = "pki/ca.pem"
certificate = "pki/server.crt"
key = "pki/server.key"

[[api.clients]]
subject = "CN=otpbox-portal,O=otpbox development"
role = "portal"

[hsm]
pin_file = "hsm/user.pin"

[sms]
template = "Ihr Anmeldecode: {code}."

[[modems]]
device = "modem/modem0"

[pincard]
rows = 8
)toml";

class ConfigChanges : public ::testing::Test {
  protected:
    // The base configuration with each (from, to) replaced, as read.
    Config read_with(const std::vector<std::pair<std::string, std::string>>& changes,
                     const std::string& appended = "") {
        std::string text(kBase);
        for (const auto& [from, to] : changes) {
            const auto at = text.find(from);
            EXPECT_NE(at, std::string::npos) << from;
            text.replace(at, from.size(), to);
        }
        write_file(m_dir.path() / "otpbox.toml", text + appended);
        return load_config(m_dir.path() / "otpbox.toml");
    }

    TempDir m_dir;
};

TEST_F(ConfigChanges, NamesEverySettingTakenOnlyAtAStart) {
    const auto running = read_with({});
    const auto read =
        read_with({{"port = 9443", "port = 9444"},
                   {"Ihr Anmeldecode", "Ihr Code"},
                   {"rows = 8", "rows = 9"},
                   {"device = \"modem/modem0\"", "device = \"modem/modem1\""}},
                  "[audit]\nanchor_file = \"audit.anchor\"\n[log]\nlevel = \"debug\"\n");
    EXPECT_EQ(settings_needing_restart(running, read),
              (std::vector<std::string>{"api.port", "sms.template", "modems[0].device",
                                        "pincard.rows", "log.level", "audit.anchor_file"}));
    EXPECT_FALSE(tls_settings_differ(running, read));

    // A key written with the value it had by default changes nothing.
    EXPECT_TRUE(
        settings_needing_restart(running, read_with({}, "[log]\nlevel = \"info\"\n")).empty());
    EXPECT_EQ(settings_needing_restart(running, read_with({}, "[[modems]]\ndevice = \"m1\"\n")),
              std::vector<std::string>{"modems"});
}

TEST_F(ConfigChanges, TlsSettingsAreReloadedNotRestarted) {
    const auto running = read_with({});
    const auto other_client =
        read_with({{"CN=otpbox-portal,O=otpbox development", "CN=otpbox-other"}});
    EXPECT_TRUE(tls_settings_differ(running, other_client));
    EXPECT_TRUE(settings_needing_restart(running, other_client).empty());

    const auto other_ca = read_with({{"pki/ca.pem", "pki/other-ca.pem"}}, "");
    EXPECT_TRUE(tls_settings_differ(running, other_ca));
    EXPECT_TRUE(settings_needing_restart(running, other_ca).empty());
    EXPECT_TRUE(tls_settings_differ(
        running, read_with({{"port = 9443", "port = 9443\nsession_ticket_seconds = 60"}})));
    EXPECT_FALSE(tls_settings_differ(running, read_with({})));
}

}  // namespace
}  // namespace otpbox::firmware::detail
