// otpboxd and the audit anchor: a log cut off behind the daemon's back is
// reported and the anchor that proves it is kept; a database holding a
// trigger is refused.

#include <gtest/gtest.h>

#include "console_screen.hpp"
#include "dev_instance.hpp"
#include "otpbox/firmware/status_file.hpp"

namespace otpbox::e2e {
namespace {

using namespace std::chrono_literals;

std::size_t count_of(const std::string& text, const std::string& what) {
    std::size_t count = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
        ++count;
    }
    return count;
}

void sqlite(const DevInstance& dev, const std::string& sql) {
    const auto result = test::run_command("sqlite3 '" + (dev.root() / "otpbox.db").string() +
                                          "' \"" + sql + "\" 2>&1");
    ASSERT_EQ(result.status, 0) << result.output;
}

class AuditAnchor : public ::testing::Test {
  protected:
    void SetUp() override {
        dev.provision();
        dev.replace_in_config("[log]", "[audit]\nanchor_file = \"audit.anchor\"\n\n[log]");
        dev.start_simulator();
    }

    [[nodiscard]] std::string anchor() const {
        return test::read_file(dev.root() / "audit.anchor");
    }

    DevInstance dev{DevInstance::kNotStarted};
};

TEST_F(AuditAnchor, ALogCutOffWhileStoppedIsReportedAndItsAnchorKept) {
    dev.start_daemon();
    for (const auto* user : {"dr.one", "dr.two", "dr.three"}) {
        ASSERT_EQ(dev.call("POST", std::string("/v1/users/") + user + "/pincards").status, 201);
    }
    EXPECT_EQ(dev.daemon->stop(), 0);
    const auto written = anchor();
    ASSERT_FALSE(written.empty());
    const auto sequence = std::stoll(written);
    ASSERT_GE(sequence, 3);
    // The anchor is in the log too, which leaves the box.
    const auto first_log = test::read_file(dev.daemon_log());
    EXPECT_NE(first_log.find("event=audit_anchor seq=" + std::to_string(sequence) +
                             " mac=" + written.substr(written.find(' ') + 1, 64)),
              std::string::npos)
        << first_log;

    sqlite(dev, "DELETE FROM audit WHERE seq > 1");
    dev.start_daemon();
    const auto health = dev.call("GET", "/v1/health", std::nullopt, "monitor");
    ASSERT_EQ(health.status, 200) << health.body;
    const auto audit = health.json().at("audit").as_object();
    EXPECT_FALSE(audit.at("ok").as_bool()) << health.body;
    EXPECT_NE(std::string(audit.at("detail").as_string()).find("are missing"), std::string::npos)
        << health.body;
    EXPECT_EQ(health.field("status"), "degraded");
    const auto status_file = firmware::status_file_for(dev.root() / "otpbox.toml");
    ASSERT_TRUE(test::wait_until(
        [&] {
            return test::read_file(status_file).find("\"audit\":{\"ok\":false") !=
                   std::string::npos;
        },
        10s))
        << test::read_file(status_file);

    // The console's status says it too.
    auto password = test::read_file(dev.root() / "console.pass");
    password.erase(password.find_last_not_of('\n') + 1);
    {
        ConsoleScreen screen(dev.root() / "otpbox.toml", dev.root() / "console.tty");
        ASSERT_TRUE(screen.expect("Password: ")) << screen.screen();
        screen.line(password);
        ASSERT_TRUE(screen.expect("Logged in.")) << screen.screen();
        screen.mark();
        screen.line("status");
        ASSERT_TRUE(screen.expect("Version", 30s)) << screen.since_mark();
        EXPECT_NE(screen.since_mark().find("BROKEN: rows after 1 are missing"), std::string::npos)
            << screen.since_mark();
    }

    // The stop writes no anchor over the one that names the cut rows.
    EXPECT_EQ(dev.daemon->stop(), 0);
    EXPECT_EQ(anchor(), written);
    const auto log = test::read_file(dev.daemon_log()).substr(first_log.size());
    EXPECT_EQ(count_of(log, "event=audit_anchor_mismatch"), 1U) << log;
    EXPECT_EQ(count_of(log, "event=audit_anchor "), 0U) << log;
}

TEST_F(AuditAnchor, AnIntactLogKeepsItsAnchorMoving) {
    dev.start_daemon();
    ASSERT_EQ(dev.call("POST", "/v1/users/dr.one/pincards").status, 201);
    EXPECT_EQ(dev.daemon->stop(), 0);
    const auto before = std::stoll(anchor());
    dev.start_daemon();
    const auto health = dev.call("GET", "/v1/health", std::nullopt, "monitor");
    EXPECT_TRUE(health.json().at("audit").as_object().at("ok").as_bool()) << health.body;
    ASSERT_EQ(dev.call("POST", "/v1/users/dr.two/pincards").status, 201);
    EXPECT_EQ(dev.daemon->stop(), 0);
    EXPECT_GT(std::stoll(anchor()), before);
    EXPECT_EQ(test::read_file(dev.daemon_log()).find("event=audit_anchor_mismatch"),
              std::string::npos);
}

// A restore at the console replaces the log while otpboxd serves: the
// console anchors the restored log, and the daemon finds it following on.
TEST_F(AuditAnchor, ARestoreAtTheConsoleLeavesTheDaemonFindingTheLogIntact) {
    dev.start_daemon();
    ASSERT_EQ(dev.call("POST", "/v1/users/dr.one/pincards").status, 201);
    auto password = test::read_file(dev.root() / "console.pass");
    password.erase(password.find_last_not_of('\n') + 1);
    ConsoleScreen screen(dev.root() / "otpbox.toml", dev.root() / "console.tty");
    const auto run = [&](const std::string& command, const std::string& until) {
        screen.mark();
        screen.line(command);
        EXPECT_TRUE(screen.expect(until, 30s)) << command << ":\n" << screen.since_mark();
        return screen.mark();
    };
    ASSERT_TRUE(screen.expect("Password: ")) << screen.screen();
    screen.line(password);
    ASSERT_TRUE(screen.expect("Logged in.")) << screen.screen();
    const auto backup = dev.root() / "backup.db";
    (void)run("backup " + backup.string(), "vendor's way");
    for (const auto* user : {"dr.two", "dr.three"}) {
        ASSERT_EQ(dev.call("POST", std::string("/v1/users/") + user + "/pincards").status, 201);
    }
    // An anchor past the backup's rows, as the daemon's minute would write.
    EXPECT_EQ(dev.daemon->stop(), 0);
    const auto before = std::stoll(anchor());
    dev.start_daemon();

    (void)run("restore " + backup.string(), "[y/N]");
    const auto restored = run("y", "last row (");
    EXPECT_NE(restored.find("now names the restored"), std::string::npos) << restored;
    EXPECT_LT(std::stoll(anchor()), before);
    EXPECT_NE(run("audit verify", "reached.").find("Audit log intact"), std::string::npos);

    EXPECT_EQ(dev.daemon->stop(), 0);
    const auto log = test::read_file(dev.daemon_log());
    EXPECT_EQ(log.find("event=audit_anchor_mismatch"), std::string::npos) << log;
    dev.start_daemon();
    const auto health = dev.call("GET", "/v1/health", std::nullopt, "monitor");
    EXPECT_TRUE(health.json().at("audit").as_object().at("ok").as_bool()) << health.body;
}

TEST_F(AuditAnchor, AGarbledAnchorFileIsReportedAndNotReplaced) {
    dev.start_daemon();
    EXPECT_EQ(dev.daemon->stop(), 0);
    test::write_file(dev.root() / "audit.anchor", "nonsense\n");
    dev.start_daemon();
    const auto health = dev.call("GET", "/v1/health", std::nullopt, "monitor");
    const auto audit = health.json().at("audit").as_object();
    EXPECT_FALSE(audit.at("ok").as_bool()) << health.body;
    EXPECT_NE(std::string(audit.at("detail").as_string()).find("unreadable"), std::string::npos)
        << health.body;
    EXPECT_EQ(dev.daemon->stop(), 0);
    EXPECT_EQ(anchor(), "nonsense\n");
}

TEST_F(AuditAnchor, ADatabaseHoldingATriggerIsRefused) {
    dev.start_daemon();
    EXPECT_EQ(dev.daemon->stop(), 0);
    sqlite(dev, "CREATE TRIGGER quiet BEFORE INSERT ON audit BEGIN SELECT RAISE(IGNORE); END");
    dev.start_daemon(false);
    ASSERT_TRUE(test::wait_until([&] { return !dev.daemon->running(); }, 30s));
    EXPECT_EQ(dev.daemon->stop(), 1);
    const auto log = test::read_file(dev.daemon_log());
    EXPECT_NE(log.find("holds trigger quiet"), std::string::npos) << log;
}

}  // namespace
}  // namespace otpbox::e2e
