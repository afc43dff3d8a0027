#include "otpbox/firmware/config.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include "test_support.hpp"

namespace otpbox::firmware {
namespace {

using otpbox::test::TempDir;
using otpbox::test::write_file;

constexpr const char* kMinimal = R"toml(
[api]
port = 9443
ca = "pki/ca.pem"
certificate = "pki/server.crt"
key = "pki/server.key"

[[api.clients]]
subject = "CN=otpbox-portal,O=otpbox development"
role = "portal"

[[api.clients]]
subject = "CN=otpbox-monitor,O=otpbox development"
role = "monitor"

[hsm]
token = "otpbox"
pin_file = "hsm/user.pin"

[hsm.environment]
SOFTHSM2_CONF = "hsm/softhsm2.conf"

[[modems]]
device = "modem/modem0"
)toml";

TEST(Config_Load, ResolvesPathsAgainstTheFilesFolder) {
    TempDir dir;
    write_file(dir.path() / "otpbox.toml", kMinimal);
    const auto config = load_config(dir.path() / "otpbox.toml");

    EXPECT_EQ(config.api.port, 9443);
    EXPECT_EQ(config.api.ca_file, dir.path() / "pki/ca.pem");
    EXPECT_EQ(config.hsm.pin_file, dir.path() / "hsm/user.pin");
    EXPECT_EQ(config.hsm.environment.at("SOFTHSM2_CONF"),
              (dir.path() / "hsm/softhsm2.conf").string());
    ASSERT_EQ(config.api.clients.size(), 2u);
    EXPECT_EQ(config.api.clients[1].role, api::Role::monitor);
    ASSERT_EQ(config.modems.size(), 1u);
    EXPECT_EQ(config.modems[0].name, "modem0");
    EXPECT_EQ(config.modems[0].device, dir.path() / "modem/modem0");
    EXPECT_EQ(config.database, dir.path() / "otpbox.db");
}

TEST(Config_Load, DefaultsFollowTheRules) {
    TempDir dir;
    write_file(dir.path() / "otpbox.toml", kMinimal);
    const auto config = load_config(dir.path() / "otpbox.toml");

    EXPECT_EQ(config.sms.otp_digits, 6u);
    EXPECT_EQ(config.sms.otp_validity, std::chrono::seconds(600));
    EXPECT_EQ(config.sms.allowed_countries, std::vector<std::string>{"+49"});
    EXPECT_EQ(config.pincard.columns, 8u);
    EXPECT_EQ(config.pincard.rows, 8u);
    EXPECT_EQ(config.pincard.cell_length, 2u);
    EXPECT_EQ(config.pincard.challenge_cells, 3u);
    EXPECT_EQ(config.pincard.challenge_validity, std::chrono::seconds(300));
}

std::string with_api_keys(const std::string& keys) {
    std::string text(kMinimal);
    text.replace(text.find("[api]\n"), 6, "[api]\n" + keys);
    return text;
}

TEST(Config_Load, ServerLimitsComeFromTheApiTable) {
    TempDir dir;
    write_file(dir.path() / "otpbox.toml",
               with_api_keys("handshake_timeout_seconds = 3\nrequest_timeout_seconds = 7\n"
                             "idle_timeout_seconds = 11\nmax_header_bytes = 4096\n"));
    const auto limits = load_config(dir.path() / "otpbox.toml").api.limits;
    EXPECT_EQ(limits.handshake_timeout, std::chrono::seconds(3));
    EXPECT_EQ(limits.request_timeout, std::chrono::seconds(7));
    EXPECT_EQ(limits.idle_timeout, std::chrono::seconds(11));
    EXPECT_EQ(limits.max_header, 4096u);
    EXPECT_EQ(limits.max_body, 16u * 1024u);

    write_file(dir.path() / "otpbox.toml", with_api_keys("idle_timeout_seconds = 0\n"));
    EXPECT_THROW((void)load_config(dir.path() / "otpbox.toml"), ConfigError);
    write_file(dir.path() / "otpbox.toml", with_api_keys("max_header_bytes = 100\n"));
    EXPECT_THROW((void)load_config(dir.path() / "otpbox.toml"), ConfigError);
}

TEST(Config_Load, SessionTicketLifetimeIsAnHourUnlessSetAndZeroTurnsThemOff) {
    TempDir dir;
    const auto file = dir.path() / "otpbox.toml";
    write_file(file, kMinimal);
    EXPECT_EQ(load_config(file).api.ticket_lifetime, std::chrono::seconds(3600));
    write_file(file, with_api_keys("session_ticket_seconds = 600\n"));
    EXPECT_EQ(load_config(file).api.ticket_lifetime, std::chrono::seconds(600));
    write_file(file, with_api_keys("session_ticket_seconds = 0\n"));
    EXPECT_EQ(load_config(file).api.ticket_lifetime, std::chrono::seconds(0));
    write_file(file, with_api_keys("session_ticket_seconds = 86401\n"));
    EXPECT_THROW((void)load_config(file), ConfigError);
    write_file(file, with_api_keys("session_ticket_seconds = -1\n"));
    EXPECT_THROW((void)load_config(file), ConfigError);
}

// The answer deadline follows the HSM's call deadline unless set, and may
// never be shorter than one call's.
TEST(Config_Load, AnswerDeadlineOutlastsTheHsmCallDeadline) {
    TempDir dir;
    const auto file = dir.path() / "otpbox.toml";
    const auto with_call_timeout = [](std::string text, const std::string& value) {
        text.replace(text.find("[hsm]\n"), 6, "[hsm]\ncall_timeout_ms = " + value + "\n");
        return text;
    };
    write_file(file, kMinimal);
    auto config = load_config(file);
    EXPECT_EQ(config.api.limits.answer_timeout, std::chrono::milliseconds(11000));
    EXPECT_EQ(config.api.limits.workers, 8u);

    write_file(file, with_call_timeout(kMinimal, "2000"));
    EXPECT_EQ(load_config(file).api.limits.answer_timeout, std::chrono::milliseconds(5000));

    write_file(file,
               with_call_timeout(with_api_keys("answer_timeout_ms = 2500\nworkers = 3\n"), "2000"));
    config = load_config(file);
    EXPECT_EQ(config.api.limits.answer_timeout, std::chrono::milliseconds(2500));
    EXPECT_EQ(config.api.limits.workers, 3u);

    write_file(file, with_call_timeout(with_api_keys("answer_timeout_ms = 2000\n"), "2000"));
    try {
        (void)load_config(file);
        ADD_FAILURE() << "an answer deadline no longer than a call's was accepted";
    } catch (const ConfigError& error) {
        EXPECT_NE(std::string(error.what()).find("api.answer_timeout_ms"), std::string::npos)
            << error.what();
    }
}

struct BadConfig {
    const char* text;
    const char* names;
};

class Config_Refuses : public ::testing::TestWithParam<BadConfig> {};

TEST_P(Config_Refuses, NamingTheKey) {
    TempDir dir;
    write_file(dir.path() / "otpbox.toml", std::string(kMinimal) + GetParam().text);
    try {
        (void)load_config(dir.path() / "otpbox.toml");
        FAIL() << "accepted: " << GetParam().text;
    } catch (const ConfigError& error) {
        EXPECT_NE(std::string(error.what()).find(GetParam().names), std::string::npos)
            << error.what();
    }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, Config_Refuses,
    ::testing::Values(BadConfig{"[sms]\notp_digits = 5\n", "sms.otp_digits"},
                      BadConfig{"[sms]\notp_digits = \"six\"\n", "sms.otp_digits"},
                      BadConfig{"[sms]\ntemplate = \"no code here\"\n", "sms.template"},
                      BadConfig{"[sms]\nallowed_countries = [\"49\"]\n", "sms.allowed_countries"},
                      BadConfig{"[pincard]\ncolumns = 27\n", "pincard.columns"},
                      BadConfig{"[[api.clients]]\nsubject = \"CN=x\"\nrole = \"admin\"\n", "role"},
                      BadConfig{"[log\n", "otpbox.toml"}));

TEST(Config_Load, SimPinComesFromAPrivateFile) {
    TempDir dir;
    write_file(dir.path() / "sim.pin", "1234\n", 0600);
    write_file(dir.path() / "otpbox.toml", std::string(kMinimal) + "sim_pin_file = \"sim.pin\"\n");
    EXPECT_EQ(load_config(dir.path() / "otpbox.toml").modems.at(0).sim_pin, "1234");

    ::chmod((dir.path() / "sim.pin").c_str(), 0644);
    EXPECT_THROW((void)load_config(dir.path() / "otpbox.toml"), ConfigError);
    write_file(dir.path() / "sim.pin", "12a4\n", 0600);
    EXPECT_THROW((void)load_config(dir.path() / "otpbox.toml"), ConfigError);
}

TEST(Config_Load, MissingFileIsAConfigError) {
    TempDir dir;
    EXPECT_THROW((void)load_config(dir.path() / "absent.toml"), ConfigError);
}

}  // namespace
}  // namespace otpbox::firmware
