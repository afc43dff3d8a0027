// What otpboxd's log, health and metrics say when a modem misbehaves in a
// way its state does not show: the simulator loses the OK after every
// +CMGS, so each SMS goes out and the modem is reset and ready again before
// the daemon's next poll.

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>
#include <string>

#include "dev_instance.hpp"

namespace otpbox::e2e {
namespace {

using namespace std::chrono_literals;

// The log's lines that contain text.
std::vector<std::string> lines_with(const std::string& log, const std::string& text) {
    std::vector<std::string> lines;
    for (auto at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) {
        const auto start = log.rfind('\n', at) + 1;
        lines.push_back(log.substr(start, log.find('\n', at) - start));
    }
    return lines;
}

TEST(ModemFaults, AResetAfterALostOkIsLoggedCountedAndShown) {
    DevInstance dev(DevInstance::kNotStarted);
    dev.provision();
    // A lost OK costs one send timeout; the least allowed keeps the test short.
    dev.replace_in_config("baud = 115200\n", "baud = 115200\nsend_timeout_ms = 1000\n");
    dev.start_simulator({"--lost-ok-rate", "1"});
    dev.start_daemon();
    ASSERT_EQ(dev.call("PUT", "/v1/users/e2e.reset/phone", R"({"number":"0170 5556677"})").status,
              200);

    const auto otp = dev.call("POST", "/v1/users/e2e.reset/otp");
    ASSERT_EQ(otp.status, 201) << otp.body;
    const auto code = dev.sms_code("1705556677");
    ASSERT_TRUE(code) << "no SMS in the outbox";

    const auto logged = [&] {
        return !lines_with(test::read_file(dev.daemon_log()), "event=modem_reset").empty();
    };
    ASSERT_TRUE(test::wait_until(logged, 15s, 200ms)) << test::read_file(dev.daemon_log());
    const auto log = test::read_file(dev.daemon_log());
    const auto resets = lines_with(log, "event=modem_reset");
    ASSERT_EQ(resets.size(), 1u) << log;
    EXPECT_NE(resets[0].find("warning event=modem_reset modem=modem0 count=1 total=1 "
                             "reason=\"AT+CMGS: no final result after the reference (AT+CMGS: "
                             "timeout: no final result before the deadline); the SMS counts as "
                             "sent and the modem was reset\""),
              std::string::npos)
        << resets[0];
    // Never the number, never the code.
    EXPECT_EQ(resets[0].find("5556677"), std::string::npos) << resets[0];
    EXPECT_EQ(resets[0].find(*code), std::string::npos) << resets[0];

    const auto health = dev.call("GET", "/v1/health", std::nullopt, "monitor");
    ASSERT_EQ(health.status, 200) << health.body;
    const auto modem = health.json().at("modems").as_array().at(0).as_object();
    EXPECT_EQ(modem.at("resets").as_int64(), 1) << health.body;
    EXPECT_NE(std::string(modem.at("last_reset").as_string()).find("no final result"),
              std::string::npos)
        << health.body;
    EXPECT_EQ(modem.at("sent").as_int64(), 1) << health.body;
    const auto metrics = dev.call("GET", "/metrics", std::nullopt, "monitor");
    EXPECT_NE(metrics.body.find("\notpbox_modem_resets_total{modem=\"modem0\"} 1\n"),
              std::string::npos)
        << metrics.body;

    // A second SMS, a second reset: one more line, counted from the first.
    ASSERT_EQ(dev.call("POST", "/v1/users/e2e.reset/otp").status, 201);
    ASSERT_TRUE(dev.sms_code("1705556677", 2)) << "no second SMS in the outbox";
    ASSERT_TRUE(test::wait_until(
        [&] { return !lines_with(test::read_file(dev.daemon_log()), "count=1 total=2").empty(); },
        15s, 200ms))
        << test::read_file(dev.daemon_log());
}

// With two modems, each metric family is one block: its HELP and TYPE
// once, then a line per modem, as the Prometheus text format requires.
TEST(ModemFaults, MetricsOfTwoModemsAreGroupedByFamily) {
    DevInstance dev(DevInstance::kNotStarted);
    dev.provision();
    // The second modem's device does not exist: it shows as failed, which
    // is enough for its lines.
    dev.replace_in_config("baud = 115200\n",
                          "baud = 115200\n\n[[modems]]\nname = \"modem1\"\n"
                          "device = \"modem/modem1\"\nbaud = 115200\n");
    dev.start_simulator();
    dev.start_daemon();

    const auto metrics = dev.call("GET", "/metrics", std::nullopt, "monitor");
    ASSERT_EQ(metrics.status, 200) << metrics.body;
    std::map<std::string, int> types;
    std::set<std::string> closed;  // families whose block has ended
    std::string current;
    std::istringstream lines(metrics.body);
    for (std::string line; std::getline(lines, line);) {
        const bool comment = line.starts_with("# ");
        auto name = comment ? line.substr(7) : line;
        name = name.substr(0, name.find_first_of(comment ? " " : "{ "));
        if (line.starts_with("# TYPE ")) {
            ++types[name];
        }
        if (name != current) {
            EXPECT_FALSE(closed.contains(name)) << name << " comes back:\n" << metrics.body;
            if (!current.empty()) {
                closed.insert(current);
            }
            current = name;
        }
    }
    for (const auto& [name, count] : types) {
        EXPECT_EQ(count, 1) << name;
    }
    for (const std::string family : {"otpbox_modem_ready", "otpbox_modem_signal_rssi",
                                     "otpbox_modem_sms_sent_total", "otpbox_modem_resets_total"}) {
        EXPECT_EQ(types[family], 1) << family << "\n" << metrics.body;
        EXPECT_NE(metrics.body.find(family + "{modem=\"modem0\"}"), std::string::npos);
        EXPECT_NE(metrics.body.find(family + "{modem=\"modem1\"}"), std::string::npos);
    }
}

}  // namespace
}  // namespace otpbox::e2e
