// otpboxd at start: one clear line for a problem no waiting fixes, and
// unprovisioned (no API) until every part is in place, then serving
// without a restart.

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <algorithm>

#include "dev_instance.hpp"
#include "otpbox/firmware/status_file.hpp"

namespace otpbox::e2e {
namespace {

using namespace std::chrono_literals;

// A provisioned instance whose daemon the test starts itself.
class DaemonStart : public ::testing::Test {
  protected:
    DaemonStart() { dev.provision(); }

    // Starts otpboxd and waits for it to exit; returns its status.
    int run_to_exit() {
        test::ChildProcess daemon({test::program_path("otpboxd").string(), "--config",
                                   (dev.root() / "otpbox.toml").string()},
                                  {}, log());
        EXPECT_TRUE(test::wait_until([&] { return !daemon.running(); }, 20s));
        return daemon.stop();
    }

    [[nodiscard]] std::filesystem::path log() const { return dev.root() / "start.log"; }

    static int count_lines(const std::string& text) {
        return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
    }

    DevInstance dev{DevInstance::kNotStarted};
};

TEST_F(DaemonStart, PinFileOthersCanReadStopsItWithOneLine) {
    ::chmod((dev.root() / "hsm/user.pin").c_str(), 0644);
    EXPECT_EQ(run_to_exit(), 1);
    const auto text = test::read_file(log());
    EXPECT_NE(text.find("read or written by others"), std::string::npos) << text;
    EXPECT_EQ(count_lines(text), 1) << text;
}

TEST_F(DaemonStart, WrongPinStopsItWithOneLine) {
    test::write_file(dev.root() / "hsm/user.pin", "99999999\n", 0600);
    EXPECT_EQ(run_to_exit(), 1);
    const auto text = test::read_file(log());
    EXPECT_NE(text.find("HSM login refused"), std::string::npos) << text;
    EXPECT_EQ(count_lines(text), 1) << text;
}

TEST_F(DaemonStart, MissingModuleStopsItWithOneLine) {
    dev.replace_in_config("/usr/lib/softhsm/libsofthsm2.so", "/nonexistent/libpkcs11.so");
    EXPECT_EQ(run_to_exit(), 1);
    const auto text = test::read_file(log());
    EXPECT_NE(text.find("/nonexistent/libpkcs11.so"), std::string::npos) << text;
    EXPECT_EQ(count_lines(text), 1) << text;
}

// A second otpboxd on the same configuration would drive the same modems
// over the same serial lines: it stops at once, naming the first one's pid,
// and the first one keeps serving.
TEST_F(DaemonStart, SecondDaemonOnTheSameDatabaseStopsWithOneLine) {
    dev.start_daemon();
    EXPECT_EQ(run_to_exit(), 1);
    const auto text = test::read_file(log());
    EXPECT_NE(text.find("another otpboxd (pid " + std::to_string(dev.daemon->pid()) + ")"),
              std::string::npos)
        << text;
    EXPECT_EQ(count_lines(text), 1) << text;
    EXPECT_TRUE(dev.daemon->running());
    EXPECT_EQ(dev.call("GET", "/v1/health", std::nullopt, "monitor").status, 200);

    // Once the first has stopped, a daemon starts on the same files.
    EXPECT_EQ(dev.daemon->stop(), 0);
    dev.start_daemon();
    EXPECT_EQ(dev.call("GET", "/v1/health", std::nullopt, "monitor").status, 200);
}

TEST_F(DaemonStart, BrokenConfigStopsItNamingTheKey) {
    dev.replace_in_config("columns = 8", "columns = 40");
    EXPECT_EQ(run_to_exit(), 2);
    EXPECT_NE(test::read_file(log()).find("pincard.columns"), std::string::npos);
}

// A level spdlog does not know would turn the log off without a word.
TEST_F(DaemonStart, UnknownLogLevelStopsItNamingTheKey) {
    dev.replace_in_config("level = \"info\"", "level = \"INFO\"");
    EXPECT_EQ(run_to_exit(), 2);
    const auto text = test::read_file(log());
    const auto at = text.find("event=config_error");
    ASSERT_NE(at, std::string::npos) << text;
    const auto line = text.substr(at, text.find('\n', at) - at);
    EXPECT_NE(line.find("log.level"), std::string::npos) << line;
    // The value's quotes must not end the error field early.
    EXPECT_EQ(std::count(line.begin(), line.end(), '"'), 2) << line;
}

// A misspelt key would leave its setting at the default unnoticed.
TEST_F(DaemonStart, MisspeltKeyStopsItNamingTheKey) {
    dev.replace_in_config("allowed_countries =", "allowed_country =");
    EXPECT_EQ(run_to_exit(), 2);
    EXPECT_NE(test::read_file(log()).find("sms.allowed_country: is not a known key"),
              std::string::npos)
        << test::read_file(log());
}

TEST_F(DaemonStart, UnprovisionedServesNothingThenServesWithoutRestart) {
    const auto certificate = dev.root() / "pki/server.crt";
    const auto aside = dev.root() / "server.crt.aside";
    std::filesystem::rename(certificate, aside);

    test::ChildProcess daemon(
        {test::program_path("otpboxd").string(), "--config", (dev.root() / "otpbox.toml").string()},
        {}, log());
    ASSERT_TRUE(test::wait_until(
        [&] { return test::read_file(log()).find("unprovisioned") != std::string::npos; }, 20s));
    EXPECT_NE(test::read_file(log()).find("server.crt"), std::string::npos);
    EXPECT_EQ(dev.call("GET", "/v1/health").status, 0);
    EXPECT_TRUE(daemon.running());

    std::filesystem::rename(aside, certificate);
    EXPECT_TRUE(
        test::wait_until([&] { return dev.call("GET", "/v1/health").status == 200; }, 20s, 200ms));
    EXPECT_TRUE(daemon.running());
    EXPECT_EQ(daemon.stop(), 0);
}

// A port held by another program is not a provisioning step: the daemon
// says the API could not start and why, tries again every poll, and serves
// once the port is free.
TEST_F(DaemonStart, PortInUseIsNamedAndTheApiStartsOnceItIsFree) {
    PortHolder holder(dev.port);
    ASSERT_TRUE(holder.holding());

    test::ChildProcess daemon(
        {test::program_path("otpboxd").string(), "--config", (dev.root() / "otpbox.toml").string()},
        {}, log());
    ASSERT_TRUE(test::wait_until(
        [&] { return test::read_file(log()).find("event=api_not_started") != std::string::npos; },
        20s))
        << test::read_file(log());
    const auto text = test::read_file(log());
    EXPECT_NE(text.find("Address already in use"), std::string::npos) << text;
    EXPECT_EQ(text.find("unprovisioned"), std::string::npos) << text;
    const auto status_file = firmware::status_file_for(dev.root() / "otpbox.toml");
    EXPECT_TRUE(test::wait_until(
        [&] { return test::read_file(status_file).find("\"api_error\"") != std::string::npos; },
        5s));

    holder.release();
    EXPECT_TRUE(
        test::wait_until([&] { return dev.call("GET", "/v1/health").status == 200; }, 20s, 200ms));
    EXPECT_EQ(daemon.stop(), 0);
}

}  // namespace
}  // namespace otpbox::e2e
