// otpbox-console driven through a real pseudo-terminal, as a technician
// would with picocom: first boot to serving, then every command and the
// input a terminal can throw at it.

#include <gtest/gtest.h>

#include <regex>

#include "console_screen.hpp"
#include "dev_instance.hpp"
#include "otpbox/firmware/audit_log.hpp"
#include "otpbox/firmware/database.hpp"

namespace otpbox::e2e {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::string_view kPassword = "correct horse 42";
constexpr std::string_view kSoPin = "73591824";
constexpr std::string_view kUserPin = "48261937";
const std::string kPortal = "CN=otpbox-portal,O=otpbox development";

void provision(DevInstance& instance, bool factory) {
    const auto result =
        test::run_command(test::program_path("otpbox-provision").string() + " dev --dir " +
                          instance.root().string() + (factory ? " --factory" : "") + " 2>&1");
    ASSERT_EQ(result.status, 0) << result.output;
    auto config = test::read_file(instance.root() / "otpbox.toml");
    config = std::regex_replace(config, std::regex("port = 8443"),
                                "port = " + std::to_string(instance.port));
    config = std::regex_replace(config, std::regex("idle_seconds = 300"), "idle_seconds = 6");
    test::write_file(instance.root() / "otpbox.toml", config, 0600);
}

std::unique_ptr<test::ChildProcess> start_daemon(DevInstance& instance) {
    return std::make_unique<test::ChildProcess>(
        std::vector<std::string>{test::program_path("otpboxd").string(), "--config",
                                 (instance.root() / "otpbox.toml").string()},
        std::vector<std::string>{}, instance.root() / "otpboxd.log");
}

// The PEM block of that kind in text.
std::string pem_block(const std::string& text, const std::string& kind) {
    const auto begin = text.find("-----BEGIN " + kind + "-----");
    const auto end_marker = "-----END " + kind + "-----";
    const auto end = text.find(end_marker, begin);
    if (begin == std::string::npos || end == std::string::npos) {
        return {};
    }
    auto block = text.substr(begin, end + end_marker.size() - begin);
    block.erase(std::remove(block.begin(), block.end(), '\r'), block.end());
    return block + "\n";
}

void paste(ConsoleScreen& screen, const std::string& pem) {
    std::string typed;
    for (const char c : pem) {
        typed += c == '\n' ? '\r' : c;
    }
    screen.type(typed);
    screen.line("");
}

// Waits for the prompt, then types the answer.
void answer(ConsoleScreen& screen, std::string_view prompt, std::string_view text) {
    ASSERT_TRUE(screen.expect(prompt)) << screen.screen();
    screen.mark();
    screen.line(text);
}

void log_in(ConsoleScreen& screen, std::string_view password) {
    ASSERT_TRUE(screen.expect("Password: ")) << screen.screen();
    screen.mark();
    screen.line(password);
    ASSERT_TRUE(screen.expect("Logged in.")) << screen.screen();
    screen.mark();
}

TEST(Console_FirstBoot, TakesAFactoryFreshApplianceToServingThePortal) {
    DevInstance instance(DevInstance::kNotStarted);
    provision(instance, true);
    ASSERT_FALSE(fs::exists(instance.root() / "pki/server.crt"));
    // The SIM wants its PIN: only the console's 'modem pin' readies the modem.
    instance.start_simulator({"--sim-pin", "2468"});
    auto daemon = start_daemon(instance);
    ConsoleScreen screen(instance.root() / "otpbox.toml", instance.root() / "console.tty");

    ASSERT_TRUE(screen.expect("factory-fresh")) << screen.screen();
    // The Enter that the hardware guide has the technician press first
    // shows the greeting again, not a cancellation.
    answer(screen, "New console password: ", "");
    ASSERT_TRUE(screen.expect("factory-fresh")) << screen.screen();
    EXPECT_EQ(screen.since_mark().find("Cancelled"), std::string::npos) << screen.since_mark();
    answer(screen, "New console password: ", kPassword);
    answer(screen, "The same again: ", kPassword);
    answer(screen, "Initialise it now? [y/N]", "y");
    answer(screen, "New SO PIN: ", kSoPin);
    answer(screen, "The same again: ", kSoPin);
    answer(screen, "New user PIN: ", kUserPin);
    answer(screen, "The same again: ", kUserPin);
    ASSERT_TRUE(screen.expect("The HSM is ready.", 60s)) << screen.screen();
    EXPECT_EQ(screen.screen().find(kPassword), std::string::npos) << "password echoed";
    EXPECT_EQ(screen.screen().find(kSoPin), std::string::npos) << "SO PIN echoed";
    EXPECT_EQ(screen.screen().find(kUserPin), std::string::npos) << "user PIN echoed";
    EXPECT_EQ(test::read_file(instance.root() / "hsm/user.pin"), std::string(kUserPin) + "\n");
    log_in(screen, kPassword);

    screen.line("tls csr");
    ASSERT_TRUE(screen.expect("-----END CERTIFICATE REQUEST-----", 30s)) << screen.screen();
    const auto csr = pem_block(screen.mark(), "CERTIFICATE REQUEST");
    test::write_file(instance.root() / "request.csr", csr);
    const auto signed_by_ca =
        test::run_command(test::program_path("otpbox-provision").string() + " sign-csr --pki " +
                          (instance.root() / "pki").string() + " --csr " +
                          (instance.root() / "request.csr").string());
    ASSERT_EQ(signed_by_ca.status, 0) << signed_by_ca.output;

    screen.line("tls install");
    ASSERT_TRUE(screen.expect("then an empty line"));
    paste(screen, signed_by_ca.output);
    ASSERT_TRUE(screen.expect("Installed CN=localhost")) << screen.screen();
    screen.mark();
    screen.line("tls trust");
    ASSERT_TRUE(screen.expect("then an empty line"));
    paste(screen, test::read_file(instance.root() / "pki/ca.pem"));
    ASSERT_TRUE(screen.expect("Trusted CN=otpbox development CA")) << screen.screen();
    screen.mark();
    screen.line("tls allow \"" + kPortal + "\" portal");
    ASSERT_TRUE(screen.expect("Allowed " + kPortal + " as portal.")) << screen.screen();
    screen.mark();

    // The daemon notices on its own and serves: the portal's flow works.
    ASSERT_TRUE(test::wait_until([&] { return instance.call("GET", "/v1/health").status != 0; },
                                 30s, 250ms))
        << test::read_file(instance.root() / "otpboxd.log");
    EXPECT_EQ(instance.call("GET", "/v1/health", std::nullopt, "monitor").status, 0)
        << "the monitor was never allowed";
    const auto card = instance.call("POST", "/v1/users/dr.first/pincards");
    ASSERT_EQ(card.status, 201) << card.body;
    const auto login = instance.call("POST", "/v1/users/dr.first/login");
    ASSERT_EQ(login.status, 201) << login.body;
    const auto response = answer_from_grid(card.json(), login.json());
    const auto verified =
        instance.call("POST", "/v1/challenges/" + login.field("challenge") + "/verify",
                      "{\"response\": \"" + response + "\"}");
    EXPECT_EQ(verified.status, 200) << verified.body;

    screen.line("status");
    ASSERT_TRUE(screen.expect("Version")) << screen.screen();
    const auto status = screen.mark();
    EXPECT_NE(status.find("serving the API"), std::string::npos) << status;
    EXPECT_NE(status.find("5 of 5 present"), std::string::npos) << status;
    EXPECT_NE(status.find("otpbox-tls-v1 in the HSM"), std::string::npos) << status;
    // The SIM asks for a PIN none is stored for yet: modem list says so in
    // words, once the daemon has tried the modem.
    std::string listed;
    EXPECT_TRUE(test::wait_until(
        [&] {
            screen.mark();
            screen.line("modem list");
            listed = screen.expect("SMS queue", 5s) ? screen.since_mark() : "";
            return listed.find("sim_locked") != std::string::npos;
        },
        20s, 500ms))
        << listed;
    EXPECT_NE(listed.find("the SIM asks for a PIN and none is stored"), std::string::npos)
        << listed;

    screen.line("modem pin modem0");
    // Too long: said at once, before the PIN is asked a second time.
    answer(screen, "New SIM PIN: ", "123456789");
    ASSERT_TRUE(screen.expect("must be 4 to 8 digits")) << screen.since_mark();
    answer(screen, "New SIM PIN: ", "2468");
    answer(screen, "The same again: ", "2468");
    ASSERT_TRUE(screen.expect("stored, encrypted")) << screen.since_mark();
    EXPECT_EQ(screen.screen().find("2468"), std::string::npos) << "SIM PIN echoed";
    screen.mark();
    // The daemon restarts its modems with the PIN; the test SMS then leaves.
    ASSERT_TRUE(test::wait_until(
        [&] {
            screen.mark();
            screen.line("modem list");
            return screen.expect("registration", 5s) &&
                   screen.since_mark().find("ready") != std::string::npos;
        },
        40s, 1s))
        << screen.since_mark() << test::read_file(instance.root() / "otpboxd.log");
    screen.mark();
    screen.line("modem test +491701234567");
    ASSERT_TRUE(screen.expect("sent by modem0", 60s)) << screen.since_mark();
    // The simulator sends a delivery report, and the console waits for it.
    EXPECT_TRUE(screen.expect("delivered", 30s)) << screen.since_mark();
    EXPECT_NE(screen.since_mark().find("+49 170 ****567"), std::string::npos);
    // A send in progress is not called "queued" here: a modem has it.
    EXPECT_EQ(screen.since_mark().find("queued by"), std::string::npos) << screen.since_mark();
    EXPECT_TRUE(test::wait_until(
        [&] {
            return test::read_file(instance.outbox()).find("otpbox test message") !=
                   std::string::npos;
        },
        10s));
}

// Ctrl-C at "The same again:" ends the whole dialog: it is no mismatch
// that asks again, so what is typed next goes to the prompt it is meant for.
TEST(Console_FirstBoot, CtrlCAtAConfirmationCancelsTheWholeDialog) {
    DevInstance instance(DevInstance::kNotStarted);
    provision(instance, true);
    ConsoleScreen screen(instance.root() / "otpbox.toml", instance.root() / "console.tty");
    const auto cancelled_at_confirmation = [&](std::string_view prompt, std::string_view text) {
        answer(screen, prompt, text);
        ASSERT_TRUE(screen.expect("The same again: ")) << screen.since_mark();
        screen.mark();
        screen.type("\x03");
        ASSERT_TRUE(screen.expect("Cancelled; nothing changed.")) << screen.since_mark();
        EXPECT_EQ(screen.since_mark().find("differ"), std::string::npos) << screen.since_mark();
    };

    ASSERT_TRUE(screen.expect("factory-fresh")) << screen.screen();
    cancelled_at_confirmation("New console password: ", kPassword);
    ASSERT_TRUE(screen.expect("factory-fresh")) << screen.since_mark();
    EXPECT_FALSE(fs::exists(instance.root() / "console.passwd"));
    answer(screen, "New console password: ", kPassword);
    answer(screen, "The same again: ", kPassword);
    answer(screen, "Initialise it now? [y/N]", "y");
    // Longer than the token takes: said at once, with the lengths it takes.
    answer(screen, "New SO PIN: ", std::string(300, '7'));
    ASSERT_TRUE(screen.expect("must be 6 to 255 digits")) << screen.since_mark();
    answer(screen, "New SO PIN: ", "123456");
    answer(screen, "The same again: ", "123456");
    cancelled_at_confirmation("New user PIN: ", "654321");
    ASSERT_TRUE(screen.expect("Log in to go on")) << screen.since_mark();
    EXPECT_FALSE(fs::exists(instance.root() / "hsm/user.pin"));

    log_in(screen, kPassword);
    screen.line("hsm init");
    answer(screen, "New SO PIN: ", "123456");
    answer(screen, "The same again: ", "123456");
    answer(screen, "New user PIN: ", "654321");
    answer(screen, "The same again: ", "654321");
    ASSERT_TRUE(screen.expect("The HSM is ready.", 60s)) << screen.since_mark();
    EXPECT_EQ(test::read_file(instance.root() / "hsm/user.pin"), "654321\n");
    EXPECT_EQ(screen.screen().find("654321"), std::string::npos) << screen.screen();
    EXPECT_EQ(screen.screen().find("Unknown command"), std::string::npos) << screen.screen();
}

class Console_Session : public ::testing::Test {
  protected:
    void SetUp() override {
        provision(instance, false);
        password = test::read_file(instance.root() / "console.pass");
        password.erase(password.find_last_not_of("\n") + 1);
        screen = std::make_unique<ConsoleScreen>(instance.root() / "otpbox.toml",
                                                 instance.root() / "console.tty");
    }

    std::string run(const std::string& command, const std::string& until) {
        screen->mark();
        screen->line(command);
        EXPECT_TRUE(screen->expect(until, 30s)) << command << ":\n" << screen->since_mark();
        return screen->mark();
    }

    DevInstance instance{DevInstance::kNotStarted};
    std::string password;
    std::unique_ptr<ConsoleScreen> screen;
};

TEST_F(Console_Session, WrongPasswordsSlowDownAndTheRightOneLogsIn) {
    ASSERT_TRUE(screen->expect("Password: "));
    screen->line("not the password");
    ASSERT_TRUE(screen->expect("Wrong password. Next try in 1 s.")) << screen->screen();
    screen->mark();
    ASSERT_TRUE(screen->expect("Password: "));
    screen->mark();
    screen->line("still not it");
    ASSERT_TRUE(screen->expect("Wrong password. Next try in 2 s.")) << screen->screen();
    log_in(*screen, password);
    EXPECT_EQ(screen->screen().find(password), std::string::npos) << "password echoed";
}

// Restarting the console does not start the count of wrong passwords
// afresh: the delay goes on from where it was, until the right password.
TEST_F(Console_Session, WrongPasswordsCountOnAcrossARestart) {
    const auto restart = [&] {
        screen.reset();
        fs::remove(instance.root() / "console.tty");
        screen = std::make_unique<ConsoleScreen>(instance.root() / "otpbox.toml",
                                                 instance.root() / "console.tty");
    };
    const auto wrong = [&](std::string_view text, std::string_view said) {
        ASSERT_TRUE(screen->expect("Password: ")) << screen->screen();
        screen->mark();
        screen->line(text);
        ASSERT_TRUE(screen->expect(said)) << screen->since_mark();
        screen->mark();
    };
    wrong("not the password", "Wrong password. Next try in 1 s.");
    wrong("still not it", "Wrong password. Next try in 2 s.");
    // Restarted during the wait: what is left of it is waited out first.
    restart();
    ASSERT_TRUE(screen->expect("Password: ")) << screen->screen();
    EXPECT_NE(screen->screen().find("Wrong passwords were typed before the console restarted."),
              std::string::npos)
        << screen->screen();
    wrong("nor this", "Wrong password. Next try in 4 s.");
    log_in(*screen, password);

    // The right password started the count again, also for the next run.
    (void)run("logout", "Logged out.");
    restart();
    wrong("wrong again", "Wrong password. Next try in 1 s.");
    EXPECT_EQ(screen->screen().find("before the console restarted"), std::string::npos)
        << screen->screen();
}

TEST_F(Console_Session, TypeAheadDuringTheWaitIsNotTakenAsTries) {
    ASSERT_TRUE(screen->expect("Password: "));
    screen->mark();
    screen->type("wrong one\r" + password + "\rstill typing\r");
    ASSERT_TRUE(screen->expect("Next try in 1 s.")) << screen->since_mark();
    ASSERT_TRUE(screen->expect("Password: ")) << screen->since_mark();
    const auto waited = screen->mark();
    EXPECT_EQ(waited.find("Next try in 2 s."), std::string::npos) << waited;
    screen->line(password);
    EXPECT_TRUE(screen->expect("Logged in.")) << screen->since_mark();
}

TEST_F(Console_Session, RefusesWhatTheRulesForbid) {
    log_in(*screen, password);
    EXPECT_NE(
        run("tls allow \"" + kPortal + "\" monitor", "Nothing changed").find("change it there"),
        std::string::npos);
    EXPECT_NE(run("tls allow \"" + kPortal + "\" portal", "Nothing changed")
                  .find("already allowed as portal"),
              std::string::npos);
    EXPECT_FALSE(fs::exists(instance.root() / "clients.toml"));
    // The daemon is not needed for the country check: it comes first.
    EXPECT_NE(run("modem test +12025550143", "nothing sent").find("allowed_countries"),
              std::string::npos);
    EXPECT_NE(run("pincard issue dr.proc /proc/self/card.pdf", "Nothing issued").find("/proc"),
              std::string::npos);
    firmware::Database database(instance.root() / "otpbox.db");
    auto cards = database.prepare("SELECT count(*) FROM pincards WHERE user_id = 'dr.proc'");
    ASSERT_TRUE(cards.step());
    EXPECT_EQ(cards.integer(0), 0);

    // An oversized paste is refused whole: none of its lines runs as a command.
    screen->line("tls trust");
    ASSERT_TRUE(screen->expect("then an empty line"));
    screen->mark();
    std::string paste = "-----BEGIN CERTIFICATE-----\r";
    for (int i = 0; i < 1100; ++i) {
        paste += std::string(64, 'A') + "\r";
    }
    paste += "hsm keys\r-----END CERTIFICATE-----\r\r";
    screen->type(paste);
    ASSERT_TRUE(screen->expect("more than 64 KiB", 30s)) << screen->since_mark().substr(0, 400);
    EXPECT_NE(run("status", "Version").find("HSM token"), std::string::npos);
    const auto shown = screen->screen();
    EXPECT_EQ(shown.find("Unknown command 'AAAA"), std::string::npos);
    EXPECT_EQ(shown.find("Keys in token"), std::string::npos) << "a pasted line ran";
}

TEST_F(Console_Session, HelpNamesEveryCommand) {
    log_in(*screen, password);
    const auto help = run("help", "logout");
    for (const auto& word :
         {"status", "hsm init", "hsm keys", "tls csr", "tls install", "tls trust", "tls allow",
          "tls deny", "modem list", "modem pin", "modem test", "pincard issue", "pincard block",
          "pincard revoke", "backup", "restore", "audit verify", "audit export"}) {
        EXPECT_NE(help.find(word), std::string::npos) << word;
    }
    std::istringstream lines(help);
    for (std::string line; std::getline(lines, line);) {
        EXPECT_LE(line.size(), 81U) << line;
    }
    EXPECT_NE(run("frobnicate", "'help' lists them").find("Unknown command"), std::string::npos);
    // A group's first word alone, or with a word it does not know, lists the group.
    const auto group = run("hsm", "a new version of a key");
    EXPECT_NE(group.find("'hsm' goes with one of these"), std::string::npos) << group;
    EXPECT_NE(group.find("hsm init"), std::string::npos) << group;
    EXPECT_EQ(group.find("tls csr"), std::string::npos) << group;
    const auto wrong = run("modem frob", "send a test SMS");
    EXPECT_NE(wrong.find("modem pin NAME"), std::string::npos) << wrong;
}

// A typo in the configuration is named before the next session begins.
TEST_F(Console_Session, AKeyNothingReadsIsNamedBeforeTheNextSession) {
    log_in(*screen, password);
    instance.replace_in_config("allowed_countries =", "allowed_country =");
    screen->mark();
    screen->line("logout");
    EXPECT_TRUE(screen->expect("sms.allowed_country: is not a known key", 30s))
        << screen->since_mark();
    EXPECT_TRUE(screen->expect("Fix it and press Enter.", 30s)) << screen->since_mark();
    instance.replace_in_config("allowed_country =", "allowed_countries =");
    screen->line("");
    log_in(*screen, password);
}

TEST_F(Console_Session, StatusAndKeysWithoutTheDaemon) {
    log_in(*screen, password);
    const auto status = run("status", "Version");
    EXPECT_NE(status.find("NOT RUNNING"), std::string::npos) << status;
    EXPECT_NE(status.find("5 of 5 present"), std::string::npos) << status;
    EXPECT_NE(status.find("CN=otpbox-portal"), std::string::npos) << status;
    const auto keys = run("hsm keys", "otpbox-otp-mac-v1");
    EXPECT_NE(keys.find("version 1, stays in the HSM"), std::string::npos) << keys;
    EXPECT_EQ(keys.find("EXTRACTABLE"), std::string::npos) << keys;
    // Typed with spaces as people write it, the number is still read.
    const auto test_sms = run("modem test 0170 123 4567", "nothing queued");
    EXPECT_NE(test_sms.find("daemon is not running"), std::string::npos) << test_sms;
}

// A provisioned daemon kept off its port by another program is not called
// unprovisioned: status says the API is not served, and why.
TEST_F(Console_Session, StatusNamesAnApiPortInUse) {
    PortHolder holder(instance.port);
    ASSERT_TRUE(holder.holding());
    instance.start_daemon(false);
    ASSERT_TRUE(test::wait_until(
        [&] {
            return test::read_file(instance.root() / "otpboxd.status.json").find("api_error") !=
                   std::string::npos;
        },
        20s));

    log_in(*screen, password);
    const auto status = run("status", "Version");
    EXPECT_NE(status.find("NOT SERVING THE API"), std::string::npos) << status;
    EXPECT_NE(status.find("Address already in use"), std::string::npos) << status;
    EXPECT_EQ(status.find("NOT PROVISIONED"), std::string::npos) << status;
}

// After the third refused entry, a PIN typed ahead for a fourth is dropped,
// not taken as a command and shown.
TEST_F(Console_Session, APinTypedAheadAfterTheLastTryIsDropped) {
    log_in(*screen, password);
    screen->mark();
    screen->line("modem pin modem0");
    for (int i = 0; i < 2; ++i) {
        answer(*screen, "New SIM PIN: ", "12");
        ASSERT_TRUE(screen->expect("must be 4 to 8 digits")) << screen->since_mark();
    }
    ASSERT_TRUE(screen->expect("New SIM PIN: ")) << screen->since_mark();
    screen->type("12\r4711\r");
    ASSERT_TRUE(screen->expect("Nothing changed")) << screen->since_mark();
    const auto after = run("help logout", "logout");
    EXPECT_EQ(screen->screen().find("4711"), std::string::npos) << screen->screen();
    EXPECT_EQ(after.find("Unknown command"), std::string::npos) << after;
}

// Ctrl-C, Ctrl-D and the idle timeout at "The same again:" end the dialog
// as they end any question; nothing is asked again.
TEST_F(Console_Session, EveryWayOutOfAConfirmationCancelsTheDialog) {
    log_in(*screen, password);
    const auto left_at_confirmation = [&](std::string_view keys, std::string_view said) {
        screen->mark();
        screen->line("modem pin modem0");
        answer(*screen, "New SIM PIN: ", "2468");
        ASSERT_TRUE(screen->expect("The same again: ")) << screen->since_mark();
        screen->mark();
        screen->type(keys);
        ASSERT_TRUE(screen->expect(said, 20s)) << screen->since_mark();
        ASSERT_TRUE(screen->expect("Cancelled; nothing changed.")) << screen->since_mark();
        EXPECT_EQ(screen->since_mark().find("differ"), std::string::npos) << screen->since_mark();
        EXPECT_EQ(screen->since_mark().find("New SIM PIN"), std::string::npos)
            << screen->since_mark();
    };
    left_at_confirmation("\x03", "^C");
    // What is typed next is a command again.
    EXPECT_NE(run("help logout", "end the session").find("logout"), std::string::npos);
    left_at_confirmation("\x04", "Logged out.");
    log_in(*screen, password);
    left_at_confirmation("", "Idle for too long.");
    ASSERT_TRUE(screen->expect("Logged out.")) << screen->since_mark();
    log_in(*screen, password);
    // A yes/no question: Ctrl-C is a no.
    screen->line("hsm rotate card-kdk");
    ASSERT_TRUE(screen->expect("[y/N]")) << screen->since_mark();
    screen->mark();
    screen->type("\x03");
    ASSERT_TRUE(screen->expect("Nothing changed.")) << screen->since_mark();
    EXPECT_EQ(run("hsm keys", "otpbox-otp-mac").find("otpbox-card-kdk-v2"), std::string::npos);
    EXPECT_EQ(screen->screen().find("2468"), std::string::npos) << "SIM PIN echoed";
}

// A second console on the same appliance says that one runs, and ends; the
// first goes on, and once it ends another can start.
TEST_F(Console_Session, OnlyOneConsoleRunsAtATime) {
    log_in(*screen, password);
    test::ChildProcess second({test::program_path("otpbox-console").string(), "--config",
                               (instance.root() / "otpbox.toml").string(), "--pty-link",
                               (instance.root() / "second.tty").string()},
                              {}, instance.root() / "second.log");
    ASSERT_TRUE(test::wait_until([&] { return !second.running(); }, 10s))
        << "a second console runs beside the first";
    EXPECT_EQ(second.stop(), 3);
    const auto said = test::read_file(instance.root() / "second.log");
    EXPECT_NE(said.find("another otpbox-console is running"), std::string::npos) << said;
    EXPECT_NE(said.find("(pid " + std::to_string(screen->pid()) + ")"), std::string::npos) << said;
    EXPECT_FALSE(fs::exists(instance.root() / "second.tty"));
    EXPECT_NE(run("status", "Version").find("HSM token"), std::string::npos);

    screen.reset();
    fs::remove(instance.root() / "console.tty");
    screen = std::make_unique<ConsoleScreen>(instance.root() / "otpbox.toml",
                                             instance.root() / "console.tty");
    log_in(*screen, password);
}

// A typo added to otpbox.toml while logged in: help, status and logout still
// work and say what is wrong; other commands wait for the fix.
TEST_F(Console_Session, ABrokenConfigurationLeavesHelpStatusAndLogout) {
    log_in(*screen, password);
    const auto config_file = instance.root() / "otpbox.toml";
    const auto good = test::read_file(config_file);
    ASSERT_NE(good.find("[hsm]\n"), std::string::npos) << good;
    test::write_file(
        config_file,
        std::regex_replace(good, std::regex("\\[hsm\\]\n"), "[hsm]\ncall_timeout_mz = 500\n"),
        0600);

    const auto help = run("help", "end the session");
    EXPECT_NE(help.find("The configuration is broken"), std::string::npos) << help;
    EXPECT_NE(help.find("call_timeout_mz"), std::string::npos) << help;
    EXPECT_NE(help.find("hsm rotate KEY"), std::string::npos) << help;
    EXPECT_EQ(help.find("Failed"), std::string::npos) << help;
    const auto status = run("status", "Version");
    EXPECT_NE(status.find("BROKEN"), std::string::npos) << status;
    EXPECT_NE(status.find("HSM token"), std::string::npos) << status;
    const auto keys = run("hsm keys", "nothing was done");
    EXPECT_EQ(keys.find("otpbox-otp-mac"), std::string::npos) << keys;
    screen->line("logout");
    ASSERT_TRUE(screen->expect("Logged out.")) << screen->since_mark();

    // Until it is fixed, no session starts.
    ASSERT_TRUE(screen->expect("Fix it and press Enter.")) << screen->since_mark();
    test::write_file(config_file, good, 0600);
    screen->mark();
    screen->line("");
    log_in(*screen, password);
}

TEST_F(Console_Session, SurvivesLongLinesGarbageAndBreaks) {
    log_in(*screen, password);
    screen->line(std::string(10000, 'x'));
    ASSERT_TRUE(screen->expect("longer than 1024 characters")) << screen->since_mark();
    screen->mark();
    std::string garbage;
    for (int i = 0; i < 2000; ++i) {
        garbage.push_back(static_cast<char>((i * 73 + 11) % 256));
    }
    garbage.erase(std::remove(garbage.begin(), garbage.end(), '\x04'), garbage.end());
    screen->type(garbage);
    // A break as a serial port delivers it (a NUL byte), then arrow keys. A
    // pseudo-terminal carries no break of its own: tcsendbreak on either end
    // does nothing, so the byte is written instead.
    screen->type(std::string("\0\0\x1b[A\x1b[B", 8));
    screen->type("\x03");
    const auto status = run("status", "Version");
    EXPECT_NE(status.find("HSM token"), std::string::npos);
    EXPECT_TRUE(screen->running());

    screen->type("hsm ke\x03");
    EXPECT_NE(run("help hsm", "hsm keys").find("hsm init"), std::string::npos);
    screen->type(
        "statux\x7f"
        "s\r");
    EXPECT_TRUE(screen->expect("Version")) << screen->since_mark();
    screen->mark();
    screen->type("\x04");
    ASSERT_TRUE(screen->expect("Logged out.")) << screen->since_mark();
    ASSERT_TRUE(screen->expect("Password: "));
}

TEST_F(Console_Session, ReattachingFindsTheConsoleStillThere) {
    log_in(*screen, password);
    screen->detach();
    std::this_thread::sleep_for(300ms);
    screen->attach();
    EXPECT_NE(run("status", "Version").find("HSM token"), std::string::npos);
}

TEST_F(Console_Session, EveryCommandLeavesAnAuditRowEvenWhenItChangesNothing) {
    log_in(*screen, password);
    const auto rows = [&] {
        firmware::Database database(instance.root() / "otpbox.db");
        auto count = database.prepare("SELECT count(*), max(seq) FROM audit");
        EXPECT_TRUE(count.step());
        return count.integer(0);
    };
    const auto last_action = [&] {
        firmware::Database database(instance.root() / "otpbox.db");
        auto last = database.prepare("SELECT action, outcome FROM audit ORDER BY seq DESC LIMIT 1");
        EXPECT_TRUE(last.step());
        return last.text(0) + " " + last.text(1);
    };
    auto before = rows();
    (void)run("frobnicate secret-typed-here", "lists them");
    EXPECT_EQ(rows(), before + 1);
    EXPECT_EQ(last_action(), "console.unknown refused");
    before = rows();
    (void)run("hsm rotate nonsense", "Nothing changed");
    EXPECT_EQ(rows(), before + 1);
    EXPECT_EQ(last_action(), "console.hsm.rotate nothing changed");
    before = rows();
    (void)run("pincard block NOPE", "nothing changed");
    EXPECT_EQ(rows(), before + 1);

    firmware::Database database(instance.root() / "otpbox.db");
    auto typed = database.prepare("SELECT count(*) FROM audit WHERE subject LIKE '%secret-typed%'");
    ASSERT_TRUE(typed.step());
    EXPECT_EQ(typed.integer(0), 0) << "what was typed is not kept";
}

TEST_F(Console_Session, RotatesEveryKeyAndOldRecordsStillCount) {
    log_in(*screen, password);
    EXPECT_NE(run("hsm rotate tls", "Nothing changed").find("No such key"), std::string::npos);
    screen->line("hsm rotate card-kdk");
    ASSERT_TRUE(screen->expect("Make otpbox-card-kdk-v2? [y/N]")) << screen->since_mark();
    EXPECT_NE(run("y", "made in the HSM").find("otpbox-card-kdk-v2"), std::string::npos);

    const auto pdf = instance.root() / "card-v2.pdf";
    const auto issued = run("pincard issue dr.rotated " + pdf.string(), "delete the file");
    std::smatch serial;
    ASSERT_TRUE(std::regex_search(issued, serial, std::regex("Card ([0-9A-Z]{12}) issued")));

    for (const auto* key : {"otp-mac", "data-enc", "data-index", "audit-mac"}) {
        screen->line(std::string("hsm rotate ") + key);
        const auto label = std::string("otpbox-") + key + "-v2";
        ASSERT_TRUE(screen->expect("Make " + label + "? [y/N]")) << screen->since_mark();
        EXPECT_NE(run("y", "made in the HSM").find(label), std::string::npos);
    }
    const auto keys = run("hsm keys", "otpbox-tls");
    for (const auto* label : {"otpbox-card-kdk-v2", "otpbox-otp-mac-v2", "otpbox-data-enc-v2",
                              "otpbox-data-index-v2", "otpbox-audit-mac-v2"}) {
        EXPECT_NE(keys.find(label), std::string::npos) << keys;
    }
    // Rows MACed before and after the audit key's rotation verify together.
    EXPECT_NE(run("audit verify", "rows").find("intact"), std::string::npos);

    firmware::Database database(instance.root() / "otpbox.db");
    auto card = database.prepare("SELECT key_version FROM pincards WHERE serial = ?");
    card.bind(1, serial[1].str());
    ASSERT_TRUE(card.step());
    EXPECT_EQ(card.integer(0), 2);
    auto audit = database.prepare("SELECT min(key_version), max(key_version) FROM audit");
    ASSERT_TRUE(audit.step());
    EXPECT_EQ(audit.integer(0), 1);
    EXPECT_EQ(audit.integer(1), 2);
}

TEST_F(Console_Session, CardsBackupsAndTheAuditLog) {
    log_in(*screen, password);
    const auto pdf = instance.root() / "card.pdf";
    const auto issued = run("pincard issue dr.console " + pdf.string(), "delete the file");
    std::smatch serial;
    ASSERT_TRUE(std::regex_search(issued, serial, std::regex("Card ([0-9A-Z]{12}) issued")))
        << issued;
    const auto text = test::run_command("pdftotext -layout '" + pdf.string() + "' -");
    EXPECT_NE(text.output.find(serial[1].str()), std::string::npos) << text.output;
    EXPECT_EQ(fs::status(pdf).permissions() & fs::perms::others_read, fs::perms::none);
    EXPECT_NE(run("pincard issue dr.console " + pdf.string(), "Nothing issued").find("File exists"),
              std::string::npos);

    EXPECT_NE(run("pincard block " + serial[1].str() + " lost on the train", "is blocked")
                  .find("is blocked"),
              std::string::npos);
    screen->line("pincard revoke " + serial[1].str());
    ASSERT_TRUE(screen->expect("[y/N]"));
    EXPECT_NE(run("y", "is revoked").find("is revoked"), std::string::npos);
    EXPECT_NE(run("pincard block " + serial[1].str(), "nothing changed").find("nothing changed"),
              std::string::npos)
        << "a revoked card stays revoked";
    EXPECT_NE(run("pincard block NOSUCHCARD", "nothing changed").find("No PINCard has this serial"),
              std::string::npos);
    // Nothing to confirm for a card that is not there or revoked already.
    const auto unknown = run("pincard revoke NOSUCHCARD", "nothing changed");
    EXPECT_EQ(unknown.find("[y/N]"), std::string::npos) << unknown;
    EXPECT_NE(unknown.find("No PINCard has this serial"), std::string::npos) << unknown;
    const auto again = run("pincard revoke " + serial[1].str(), "nothing changed");
    EXPECT_NE(again.find("revoked already"), std::string::npos) << again;

    const auto backup = instance.root() / "backup.db";
    EXPECT_NE(run("backup " + backup.string(), "vendor's way").find("copied"), std::string::npos);
    ASSERT_TRUE(fs::exists(backup));
    test::write_file(instance.root() / "not-a-db", "hello, this is text");
    EXPECT_NE(run("restore " + (instance.root() / "not-a-db").string(), "nothing changed")
                  .find("not an SQLite database"),
              std::string::npos);
    EXPECT_NE(
        run("restore " + instance.root().string(), "nothing changed").find("a folder, not a file"),
        std::string::npos);
    EXPECT_NE(run("restore " + (instance.root() / "missing.db").string(), "nothing changed")
                  .find("no such file"),
              std::string::npos);
    // An SQLite file with the right table names but not otpbox's columns.
    const auto look_alike = instance.root() / "look-alike.db";
    ASSERT_EQ(test::run_command("sqlite3 '" + look_alike.string() +
                                "' 'CREATE TABLE users(x); CREATE TABLE pincards(x); "
                                "CREATE TABLE challenges(x); CREATE TABLE audit(x);'")
                  .status,
              0);
    EXPECT_NE(run("restore " + (instance.root() / "otpbox.db").string(), "nothing changed")
                  .find("the live database itself"),
              std::string::npos);
    // A PATH typed as "" is a usage error, not a file system error.
    for (const std::string command :
         {"backup \"\"", "restore \"\"", "audit export \"\"", "pincard issue dr.x \"\""}) {
        const auto answer = run(command, "Usage");
        EXPECT_EQ(answer.find("Failed"), std::string::npos) << answer;
    }
    const auto refused = run("restore " + look_alike.string(), "nothing changed");
    EXPECT_NE(refused.find("not an otpbox database"), std::string::npos) << refused;
    EXPECT_EQ(refused.find("[y/N]"), std::string::npos) << refused;
    // An SMS the backup holds as queued, due long after the restore: it may
    // have gone out after the backup, so the restore fails it.
    ASSERT_EQ(test::run_command("sqlite3 '" + backup.string() +
                                "' \"INSERT INTO sms_messages (id, payload, status, created_at, "
                                "updated_at, expires_at, due_at) VALUES ('restored-sms', x'00', "
                                "'queued', 0, 0, 32503680000000, 0)\"")
                  .status,
              0);
    screen->mark();
    screen->line("restore " + backup.string());
    ASSERT_TRUE(screen->expect("[y/N]"));
    EXPECT_NE(run("y", "Restored.").find("Restored."), std::string::npos);
    // The backup stays one file, also after restore has looked at it.
    EXPECT_FALSE(fs::exists(backup.string() + "-wal"));
    EXPECT_FALSE(fs::exists(backup.string() + "-shm"));
    const auto restored_sms = test::run_command(
        "sqlite3 '" + (instance.root() / "otpbox.db").string() +
        "' \"SELECT status, payload IS NULL, failure FROM sms_messages WHERE id = "
        "'restored-sms'\"");
    EXPECT_EQ(restored_sms.output,
              "failed|1|restored from a backup: it may have been sent after the backup was "
              "taken, so it is not sent again\n");

    EXPECT_NE(run("audit verify", "checked").find("Audit log intact"), std::string::npos);
    const auto exported = instance.root() / "audit.jsonl";
    EXPECT_NE(run("audit export " + exported.string(), "written to").find("audit rows"),
              std::string::npos);
    const auto rows = test::read_file(exported);
    EXPECT_NE(rows.find("\"console.login\""), std::string::npos) << rows;
    EXPECT_NE(rows.find("\"pincard.issue\""), std::string::npos) << rows;
}

// A copy of the backup at from, changed by sql, at to.
void tampered_copy(const fs::path& from, const fs::path& to, const std::string& sql) {
    fs::copy_file(from, to);
    const auto result = test::run_command("sqlite3 '" + to.string() + "' \"" + sql + "\" 2>&1");
    ASSERT_EQ(result.status, 0) << result.output;
}

TEST_F(Console_Session, RestoreTakesOnlyTheAppliancesOwnSchemaAndAChainThatVerifies) {
    // The anchor file is configured but not written yet: no daemon ran.
    screen.reset();
    auto config = test::read_file(instance.root() / "otpbox.toml");
    config = std::regex_replace(config, std::regex("\\[log\\]"),
                                "[audit]\nanchor_file = \"audit.anchor\"\n\n[log]");
    test::write_file(instance.root() / "otpbox.toml", config, 0600);
    screen = std::make_unique<ConsoleScreen>(instance.root() / "otpbox.toml",
                                             instance.root() / "console.tty");
    log_in(*screen, password);
    const auto anchor_file = instance.root() / "audit.anchor";

    auto verdict = run("audit verify", "otpboxd logs.");
    EXPECT_NE(verdict.find("NOT VERIFIED against its anchor"), std::string::npos) << verdict;
    EXPECT_NE(verdict.find(anchor_file.string() + " is missing"), std::string::npos) << verdict;
    EXPECT_EQ(verdict.find("intact"), std::string::npos) << verdict;
    EXPECT_EQ(verdict.find("No anchor file is configured"), std::string::npos) << verdict;
    test::write_file(anchor_file, "garbled\n");
    verdict = run("audit verify", "otpboxd logs.");
    EXPECT_NE(verdict.find(anchor_file.string() + " is unreadable"), std::string::npos) << verdict;
    EXPECT_EQ(verdict.find("intact"), std::string::npos) << verdict;

    const auto backup = instance.root() / "backup.db";
    EXPECT_NE(run("backup " + backup.string(), "vendor's way").find("copied"), std::string::npos);
    const std::vector<std::pair<std::string, std::string>> tampered{
        {"CREATE TRIGGER unlock AFTER UPDATE ON users BEGIN UPDATE users SET "
         "lock_until = 0; END",
         "holds trigger unlock"},
        {"CREATE TRIGGER quiet BEFORE INSERT ON audit BEGIN SELECT RAISE(IGNORE); END",
         "holds trigger quiet"},
        {"CREATE VIEW everyone AS SELECT * FROM users", "holds view everyone"},
        {"CREATE TABLE extra (x)", "holds table extra"},
        {"CREATE INDEX audit_actor ON audit (actor)", "holds index audit_actor"},
        {"UPDATE audit SET outcome = 'refused' WHERE seq = 2", "does not verify"},
        {"DELETE FROM audit WHERE seq = 2", "does not verify"},
    };
    int copy = 0;
    for (const auto& [sql, refusal] : tampered) {
        const auto file = instance.root() / ("tampered" + std::to_string(++copy) + ".db");
        tampered_copy(backup, file, sql);
        const auto answer = run("restore " + file.string(), "nothing changed");
        EXPECT_NE(answer.find(refusal), std::string::npos) << sql << ":\n" << answer;
        EXPECT_EQ(answer.find("[y/N]"), std::string::npos) << answer;
    }

    screen->mark();
    screen->line("restore " + backup.string());
    ASSERT_TRUE(screen->expect("[y/N]"));
    EXPECT_NE(screen->since_mark().find("SMS the backup holds as queued fail"), std::string::npos)
        << screen->since_mark();
    const auto restored = run("y", "last row (");
    EXPECT_NE(restored.find("now names the restored"), std::string::npos) << restored;
    const auto written = firmware::read_anchor(anchor_file);
    ASSERT_TRUE(written);
    verdict = run("audit verify", "reached.");
    EXPECT_NE(verdict.find("Audit log intact"), std::string::npos) << verdict;
    EXPECT_NE(verdict.find("the anchor (row " + std::to_string(written->sequence) + ") reached"),
              std::string::npos)
        << verdict;
}

TEST_F(Console_Session, AllowAndDenyClients) {
    log_in(*screen, password);
    const std::string someone = "CN=backup portal,O=Example";
    EXPECT_NE(run("tls allow \"" + someone + "\" portal", "as portal.").find("Allowed"),
              std::string::npos);
    EXPECT_NE(test::read_file(instance.root() / "clients.toml").find(someone), std::string::npos);
    EXPECT_NE(run("tls allow \"" + someone + "\" admin", "nothing changed").find("role"),
              std::string::npos);
    EXPECT_NE(run("tls deny " + someone, "handshake").find("Denied"), std::string::npos);
    EXPECT_EQ(test::read_file(instance.root() / "clients.toml").find(someone), std::string::npos);
    EXPECT_NE(run("tls deny \"" + kPortal + "\"", "Nothing changed").find("remove it there"),
              std::string::npos);
    screen->line("tls trust");
    ASSERT_TRUE(screen->expect("then an empty line"));
    screen->mark();
    paste(*screen, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");
    ASSERT_TRUE(screen->expect("nothing changed")) << screen->since_mark();
}

// What a client certificate of the development CA carries (provisioning's
// leaf profile).
constexpr const char* kClientExtensions =
    "basicConstraints=critical,CA:false\n"
    "keyUsage=critical,digitalSignature\n"
    "extendedKeyUsage=clientAuth\n";

// A client certificate of the development CA for subject (OpenSSL's -subj
// form, UTF-8), as pki/<name>.crt and .key, so that DevInstance::call can
// present it.
void make_client_certificate(const DevInstance& instance, const std::string& name,
                             const std::string& subject) {
    const auto pki = instance.root() / "pki";
    const auto stem = (pki / name).string();
    test::write_file(stem + ".ext", kClientExtensions);
    const auto made = test::run_command(
        "openssl req -new -utf8 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout '" +
        stem + ".key' -subj '" + subject + "' 2>/dev/null | openssl x509 -req -CA '" +
        (pki / "ca.pem").string() + "' -CAkey '" + (pki / "ca.key").string() +
        "' -set_serial 7373 -days 2 -sha256 -extfile '" + stem + ".ext' -out '" + stem +
        ".crt' 2>&1");
    ASSERT_EQ(made.status, 0) << made.output;
}

// The tester's case: a subject with an umlaut typed at the console as it
// reads, and a client certificate with that subject. otpboxd compares the
// subject in RFC 2253 form, bytes above 0x7f escaped, so the console must
// store that form for the certificate to get through the handshake.
TEST_F(Console_Session, AUtf8SubjectTypedAtTheConsoleLetsItsCertificateIn) {
    make_client_certificate(instance, "aerzte", "/O=otpbox development/CN=\xC3\x84rzte-portal");
    const auto printed = test::run_command("openssl x509 -noout -subject -nameopt RFC2253 -in '" +
                                           (instance.root() / "pki/aerzte.crt").string() + "'");
    ASSERT_EQ(printed.output, "subject=CN=\\C3\\84rzte-portal,O=otpbox development\n");
    instance.start_simulator();
    instance.start_daemon();
    ASSERT_EQ(instance.call("GET", "/v1/health", std::nullopt, "aerzte").status, 0)
        << "let in before it was allowed";

    log_in(*screen, password);
    const auto said =
        run("tls allow \"CN=\xC3\x84rzte-portal,O=otpbox development\" portal", "as portal.");
    EXPECT_NE(said.find("Allowed CN=\\C3\\84rzte-portal,O=otpbox development as portal."),
              std::string::npos)
        << said;
    EXPECT_NE(test::read_file(instance.root() / "clients.toml")
                  .find("'CN=\\C3\\84rzte-portal,O=otpbox development'"),
              std::string::npos)
        << test::read_file(instance.root() / "clients.toml");
    EXPECT_TRUE(test::wait_until(
        [&] { return instance.call("GET", "/v1/health", std::nullopt, "aerzte").status == 200; },
        15s, 250ms))
        << test::read_file(instance.daemon_log());

    // Denied the way it was typed, it is out again.
    EXPECT_NE(
        run("tls deny CN=\xC3\x84rzte-portal,O=otpbox development", "handshake").find("Denied"),
        std::string::npos);
    EXPECT_TRUE(test::wait_until(
        [&] { return instance.call("GET", "/v1/health", std::nullopt, "aerzte").status == 0; }, 15s,
        250ms));
}

// Subjects that no certificate's subject can equal as typed are refused, or
// asked about, before anything is written.
TEST_F(Console_Session, SubjectsNoCertificateMatchesAreRefusedOrAskedAbout) {
    log_in(*screen, password);
    const auto clients = [&] { return test::read_file(instance.root() / "clients.toml"); };

    auto said =
        run("tls allow \"CN=portal\xE2\x80\xAE"
            "gnp.exe,O=Example\" portal",
            "Nothing changed");
    EXPECT_NE(said.find("U+202E, a control or invisible format character"), std::string::npos)
        << said;
    said = run("tls allow \", O=\" portal", "Nothing changed");
    EXPECT_NE(said.find("cannot be used: an empty attribute"), std::string::npos) << said;
    EXPECT_EQ(said.find("routines"), std::string::npos) << said;
    said = run("tls allow \"CN=portal,XO=Example\" portal", "Nothing changed");
    EXPECT_NE(said.find("unknown attribute type \"XO\""), std::string::npos) << said;
    EXPECT_EQ(clients().find("portal"), std::string::npos) << clients();

    // Reversed: asked, and "no" names the usual order.
    screen->mark();
    screen->line("tls allow \"O=Example,CN=reversed\" monitor");
    ASSERT_TRUE(screen->expect("Allow it in this order anyway? [y/N]")) << screen->since_mark();
    EXPECT_NE(screen->since_mark().find("names O before CN"), std::string::npos)
        << screen->since_mark();
    said = run("n", "Nothing changed");
    EXPECT_NE(said.find("tls allow \"CN=reversed,O=Example\" monitor"), std::string::npos) << said;
    EXPECT_EQ(clients().find("reversed"), std::string::npos) << clients();
    screen->line("tls allow \"O=Example,CN=reversed\" monitor");
    ASSERT_TRUE(screen->expect("Allow it in this order anyway? [y/N]")) << screen->since_mark();
    EXPECT_NE(run("y", "as monitor.").find("Allowed O=Example,CN=reversed as monitor."),
              std::string::npos);

    // Attribute names in any case, spaces after the commas: stored as printed.
    EXPECT_NE(run("tls allow \"cn=lower case, o=Example\" portal", "as portal.")
                  .find("Allowed CN=lower case,O=Example as portal."),
              std::string::npos);
    EXPECT_NE(clients().find("'CN=lower case,O=Example'"), std::string::npos) << clients();
    EXPECT_NE(run("tls deny \"CN = lower case, O = Example\"", "handshake").find("Denied"),
              std::string::npos);
    EXPECT_EQ(clients().find("lower case"), std::string::npos) << clients();
}

// The request names the attributes so that RFC 2253 prints them as typed:
// the country first in the certificate, the host's name last, and an escaped
// comma inside its value.
TEST_F(Console_Session, CsrSubjectPrintsAsTyped) {
    log_in(*screen, password);
    const std::string subject = "CN=otpbox.example.net,O=Example\\, Praxis GmbH,C=DE";
    screen->mark();
    screen->line("tls csr \"" + subject + "\"");
    ASSERT_TRUE(screen->expect("-----END CERTIFICATE REQUEST-----", 30s)) << screen->screen();
    const auto csr = pem_block(screen->mark(), "CERTIFICATE REQUEST");
    test::write_file(instance.root() / "request.csr", csr);
    const auto request =
        "openssl req -noout -subject -in '" + (instance.root() / "request.csr").string() + "'";
    EXPECT_EQ(test::run_command(request + " -nameopt RFC2253").output, "subject=" + subject + "\n");
    EXPECT_EQ(test::run_command(request).output,
              "subject=C = DE, O = \"Example, Praxis GmbH\", CN = otpbox.example.net\n");

    EXPECT_NE(run("tls csr \"CN=otpbox,C=Germany\"", "Nothing changed")
                  .find("the value of C cannot be a certificate's"),
              std::string::npos);
}

// A setting otpbox.toml changed by hand that the daemon takes only at a
// start is shown by status, so the technician knows it is not in force.
TEST_F(Console_Session, StatusNamesSettingsThatNeedARestart) {
    instance.start_simulator();
    instance.start_daemon();
    log_in(*screen, password);
    EXPECT_EQ(run("status", "Version").find("RESTART"), std::string::npos);
    instance.replace_in_config("Ihr Anmeldecode: {code}.", "Ihr Code: {code}.");
    ASSERT_TRUE(test::wait_until(
        [&] {
            return test::read_file(instance.daemon_log()).find("event=restart_needed") !=
                   std::string::npos;
        },
        10s))
        << test::read_file(instance.daemon_log());
    std::string shown;
    EXPECT_TRUE(test::wait_until(
        [&] {
            shown = run("status", "Version");
            return shown.find("RESTART") != std::string::npos;
        },
        10s, 500ms))
        << shown;
    EXPECT_NE(shown.find("needed for sms.template"), std::string::npos) << shown;
}

TEST_F(Console_Session, IdleSessionsAreLoggedOut) {
    log_in(*screen, password);
    ASSERT_TRUE(screen->expect("Idle for too long.", 20s)) << screen->since_mark();
    ASSERT_TRUE(screen->expect("Password: "));
}

}  // namespace
}  // namespace otpbox::e2e
