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
    ::testing::Values(
        BadConfig{"[sms]\notp_digits = 5\n", "sms.otp_digits"},
        BadConfig{"[sms]\notp_digits = \"six\"\n", "sms.otp_digits"},
        BadConfig{"[sms]\ntemplate = \"no code here\"\n", "sms.template"},
        BadConfig{"[sms]\nallowed_countries = [\"49\"]\n", "sms.allowed_countries"},
        BadConfig{"[sms]\nallowed_countries = []\n", "sms.allowed_countries"},
        BadConfig{"[pincard]\ncolumns = 27\n", "pincard.columns"},
        BadConfig{"[[api.clients]]\nsubject = \"CN=x\"\nrole = \"admin\"\n", "role"},
        BadConfig{"[log\n", "otpbox.toml"}, BadConfig{"[sms]\notp_digit = 8\n", "sms.otp_digit:"},
        BadConfig{"[smss]\notp_digits = 8\n", "smss:"},
        BadConfig{"baudrate = 9600\n", "modems[0].baudrate:"},
        BadConfig{"[[api.clients]]\nsubject = \"CN=x\"\nrole = \"portal\"\nrol = 1\n",
                  "api.clients[2].rol:"},
        BadConfig{"[log]\nlevel = \"verbose\"\n", "log.level"},
        BadConfig{"[console]\nidle = 60\n", "console.idle:"},
        BadConfig{"[sms]\ndefault_country = \"+49\"\n", "sms.default_country"},
        BadConfig{"[[modems]]\nname = \"modem0\"\ndevice = \"modem/modem1\"\n", "modems[1].name"},
        BadConfig{"[[modems]]\nname = \"modem1\"\ndevice = \"modem/modem0\"\n", "modems[1].device"},
        BadConfig{"reset_with_cfun = \"yes\"\n", "modems[0].reset_with_cfun"},
        BadConfig{"[pincard]\nalphabet = \"00\"\n", "pincard.alphabet"},
        BadConfig{"[pincard]\nalphabet = \"\u00e4\u00f6\u00fc\"\n", "pincard.alphabet"},
        BadConfig{"baud = 12\n", "modems[0].baud:"}, BadConfig{"name = 0\n", "modems[0].name:"}));

// A key in the wrong place or a section that is no table would otherwise
// leave every setting of it at its default.
TEST(Config_Load, RefusesSectionsThatAreNoTables) {
    TempDir dir;
    const auto file = dir.path() / "otpbox.toml";
    const auto refused_naming = [&](const std::string& text, const std::string& key) {
        write_file(file, text);
        try {
            (void)load_config(file);
            ADD_FAILURE() << "accepted: " << text;
        } catch (const ConfigError& error) {
            EXPECT_NE(std::string(error.what()).find(key), std::string::npos) << error.what();
        }
    };
    refused_naming("log = \"debug\"\n" + std::string(kMinimal), ": log: must be a table");
    refused_naming("level = \"debug\"\n" + std::string(kMinimal), ": level: is not a known key");
    std::string environment(kMinimal);
    const std::string table = "[hsm.environment]\nSOFTHSM2_CONF = \"hsm/softhsm2.conf\"\n";
    environment.replace(environment.find(table), table.size(), "environment = 1\n");
    refused_naming(environment, "hsm.environment");
}

TEST(Config_Load, ListenAddressIsAnIpAddress) {
    TempDir dir;
    const auto file = dir.path() / "otpbox.toml";
    write_file(file, with_api_keys("listen = \"::1\"\n"));
    EXPECT_EQ(load_config(file).api.listen, "::1");
    for (const auto* listen : {"localhost", "127.0.0.256", ""}) {
        write_file(file, with_api_keys("listen = \"" + std::string(listen) + "\"\n"));
        try {
            (void)load_config(file);
            ADD_FAILURE() << "accepted: " << listen;
        } catch (const ConfigError& error) {
            EXPECT_NE(std::string(error.what()).find("api.listen"), std::string::npos)
                << error.what();
        }
    }
}

TEST(Config_Load, ModemResetWithCfunIsReadWhereTheDocsSayIt) {
    TempDir dir;
    const auto file = dir.path() / "otpbox.toml";
    write_file(file, kMinimal);
    EXPECT_FALSE(load_config(file).modems.at(0).reset_with_cfun);
    write_file(file, std::string(kMinimal) + "reset_with_cfun = true\n");
    EXPECT_TRUE(load_config(file).modems.at(0).reset_with_cfun);
}

TEST(Config_Load, LogLevelAndDefaultCountryTakeWhatTheyName) {
    TempDir dir;
    const auto file = dir.path() / "otpbox.toml";
    write_file(file, std::string(kMinimal) +
                         "[log]\nlevel = \"warning\"\n[sms]\n"
                         "default_country = \"43\"\n");
    const auto config = load_config(file);
    EXPECT_EQ(config.log_level, "warning");
    EXPECT_EQ(config.sms.default_country, "43");
}

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

// A folder reads as an empty file: refused for the first key it lacks, the
// message would send the operator looking for hsm.pin_file.
TEST(Config_Load, AFolderOrADeviceIsNamedForWhatItIs) {
    TempDir dir;
    const auto message = [](const std::filesystem::path& file) -> std::string {
        try {
            (void)load_config(file);
        } catch (const ConfigError& error) {
            return error.what();
        }
        return "accepted";
    };
    EXPECT_EQ(message(dir.path()), dir.path().string() + ": is a folder, not a configuration file");
    EXPECT_EQ(message("/dev/null"), "/dev/null: is not a regular file");
    EXPECT_EQ(
        message(dir.path() / "absent.toml"),
        (dir.path() / "absent.toml").string() + ": cannot be read (No such file or directory)");
}

// The message of the ConfigError that text makes, "accepted" when it loads.
std::string refusal(const std::string& text) {
    TempDir dir;
    write_file(dir.path() / "otpbox.toml", text);
    try {
        (void)load_config(dir.path() / "otpbox.toml");
    } catch (const ConfigError& error) {
        return error.what();
    }
    return "accepted";
}

// A challenge must have at least as many answers as a 6-digit SMS code:
// 10^6, which the default card has exactly.
TEST(Config_Load, RefusesAPincardChallengeEasierToGuessThanSixDigits) {
    const auto card = [](const std::string& alphabet, int cell_length, int cells) {
        return std::string(kMinimal) + "[pincard]\nalphabet = \"" + alphabet +
               "\"\ncell_length = " + std::to_string(cell_length) +
               "\nchallenge_cells = " + std::to_string(cells) + "\n";
    };
    const auto one_bit = refusal(card("01", 1, 1));
    for (const auto* key : {"pincard.alphabet", "pincard.cell_length", "pincard.challenge_cells",
                            "only 2 possible answers"}) {
        EXPECT_NE(one_bit.find(key), std::string::npos) << key << ": " << one_bit;
    }
    EXPECT_NE(refusal(card("0123456789", 1, 5)).find("only 100000 possible"), std::string::npos);
    EXPECT_NE(refusal(card("0123456789", 2, 2)).find("pincard.challenge_cells"), std::string::npos);
    EXPECT_EQ(refusal(card("0123456789", 2, 3)), "accepted");
    EXPECT_EQ(refusal(card("0123456789", 1, 6)), "accepted");
    EXPECT_EQ(refusal(card("01", 5, 4)), "accepted");  // 2^20
    EXPECT_NE(refusal(card("01", 4, 4)).find("only 65536 possible"), std::string::npos);
}

TEST(Config_Load, RefusesPortZero) {
    std::string text(kMinimal);
    text.replace(text.find("port = 9443"), 11, "port = 0");
    EXPECT_NE(refusal(text).find("api.port: must be between 1 and 65535"), std::string::npos)
        << refusal(text);
}

// The SMS path takes at most 255 parts: 153 GSM 7-bit characters each, or
// 67 UCS-2 ones (TS 23.040 9.2.3.24.1). The code's 6 digits count.
TEST(Config_Load, RefusesAnSmsTemplateThatNeverFitsTheSmsPath) {
    const auto with_template = [](const std::string& text) {
        return std::string(kMinimal) + "[sms]\ntemplate = \"" + text + "\"\n";
    };
    const std::string gsm_fits = std::string(255 * 153 - 6, 'a') + "{code}";
    EXPECT_EQ(refusal(with_template(gsm_fits)), "accepted");
    const auto gsm_over = refusal(with_template("a" + gsm_fits));
    EXPECT_NE(gsm_over.find("sms.template: is too long"), std::string::npos) << gsm_over;

    std::string cyrillic;  // one character outside GSM 7-bit makes the whole text UCS-2
    for (int i = 0; i < 255 * 67 - 6; ++i) {
        cyrillic += "\u0416";
    }
    EXPECT_EQ(refusal(with_template(cyrillic + "{code}")), "accepted");
    EXPECT_NE(refusal(with_template("\u0416" + cyrillic + "{code}")).find("sms.template"),
              std::string::npos);

    // With 8 digits the same template is two characters longer.
    const std::string gsm_fits_six = std::string(255 * 153 - 6, 'b') + "{code}";
    EXPECT_NE(refusal(std::string(kMinimal) + "[sms]\notp_digits = 8\ntemplate = \"" +
                      gsm_fits_six + "\"\n")
                  .find("sms.template"),
              std::string::npos);
}

}  // namespace
}  // namespace otpbox::firmware
