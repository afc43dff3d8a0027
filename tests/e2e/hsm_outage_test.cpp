// HSM outages seen from the portal. otpboxd loads the fault-injecting
// module (hsm/faultmod), which forwards to the SoftHSM2 token the instance
// was provisioned with, and the test takes the token away, stalls it or
// loses a session while the appliance serves. Meanwhile the API answers 503
// with Retry-After and health says why; afterwards the same otpboxd serves
// again by itself, and no request ever got a wrong answer.

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "dev_instance.hpp"
#include "kept_connection.hpp"
#include "otpbox/firmware/config.hpp"
#include "otpbox/firmware/database.hpp"
#include "otpbox/firmware/secrets.hpp"
#include "otpbox/firmware/sim_pins.hpp"
#include "otpbox/hsm/hsm.hpp"

namespace otpbox::e2e {
namespace {

using namespace std::chrono_literals;
using boost::beast::http::verb;

// Far below the stall, so that a stalled call overruns it.
constexpr auto kCallTimeout = 500ms;
constexpr auto kStall = 3000ms;
constexpr auto kRecovery = 10s;

std::optional<std::string> header_value(const HttpAnswer& answer, std::string_view name) {
    std::istringstream lines(answer.headers);
    std::string line;
    while (std::getline(lines, line)) {
        const auto colon = line.find(':');
        if (colon == std::string::npos || colon != name.size()) {
            continue;
        }
        const bool same = std::equal(name.begin(), name.end(), line.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) ==
                   std::tolower(static_cast<unsigned char>(b));
        });
        if (same) {
            auto value = line.substr(colon + 1);
            std::erase_if(value, [](char c) { return c == ' ' || c == '\r'; });
            return value;
        }
    }
    return std::nullopt;
}

// Retry-After as RFC 9110 10.2.3 allows it here: a whole number of seconds.
bool says_retry_after(const HttpAnswer& answer) {
    const auto value = header_value(answer, "Retry-After");
    return value && !value->empty() &&
           std::all_of(value->begin(), value->end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string hsm_state(const HttpAnswer& health) {
    return std::string(health.json().at("hsm").as_object().at("state").as_string());
}

std::string verify_body(const std::string& response) {
    return "{\"response\":\"" + response + "\"}";
}

// A response of the right length with every character wrong (the
// development card's alphabet is the ten digits).
std::string wrong_response(std::string right) {
    for (auto& c : right) {
        c = static_cast<char>('0' + (c - '0' + 1) % 10);
    }
    return right;
}

// A PINCard login opened for a user with a new card: where to answer it,
// and the right answer.
struct CardLogin {
    std::string verify_path;
    std::string right;
};

class HsmOutage : public ::testing::Test {
  protected:
    HsmOutage() {
        dev.provision();
        load_fault_module();
        set_fault("pass");
        dev.start_simulator();
        dev.start_daemon();
    }

    // The daemon stops on a working token, whatever a test left behind.
    ~HsmOutage() override {
        try {
            set_fault("pass");
        } catch (const std::exception&) {
        }
    }

    // Provisioning made the keys through the real module; otpboxd gets the
    // fault module in front of it, told through [hsm.environment] where
    // the real one and the control file are.
    void load_fault_module() {
        const auto config = test::read_file(dev.root() / "otpbox.toml");
        std::smatch module;
        if (!std::regex_search(config, module, std::regex("\nmodule = \"([^\"]+)\"\n"))) {
            throw std::runtime_error("no hsm.module in otpbox.toml");
        }
        const auto fault_module =
            std::filesystem::path(OTPBOX_BINARY_DIR) / "hsm" / "otpbox_pkcs11_faultmod.so";
        dev.replace_in_config(module.str(), "\nmodule = \"" + fault_module.string() +
                                                "\"\ncall_timeout_ms = " +
                                                std::to_string(kCallTimeout.count()) + "\n");
        dev.replace_in_config("[hsm.environment]\n",
                              "[hsm.environment]\nOTPBOX_FAULTMOD_TARGET = \"" + module.str(1) +
                                  "\"\nOTPBOX_FAULTMOD_CONTROL = \"" + control().string() + "\"\n");
    }

    [[nodiscard]] std::filesystem::path control() const { return dev.root() / "hsm-fault"; }

    // The module reads the file on every call: it gets the whole new
    // command or the old one, never a half-written file.
    void set_fault(const std::string& command) const {
        const auto next = control().string() + ".next";
        test::write_file(next, command + "\n");
        std::filesystem::rename(next, control());
    }

    // Health on new connections until it says the HSM is fine again.
    bool hsm_back_within(std::chrono::milliseconds limit) const {
        return test::wait_until(
            [&] {
                const auto health = dev.call("GET", "/v1/health");
                return health.status == 200 && hsm_state(health) == "ok";
            },
            limit, 200ms);
    }

    // Returns just after otpboxd's own poll, which rewrites its status file
    // every 2 s and asks the token for newer key versions: a fault set now
    // meets the test's next request, not the poll.
    void just_after_a_poll() const {
        const auto status = dev.root() / "otpboxd.status.json";
        std::error_code missing;
        const auto before = std::filesystem::last_write_time(status, missing);
        (void)test::wait_until(
            [&] {
                std::error_code error;
                const auto now = std::filesystem::last_write_time(status, error);
                return !error && (missing || now != before);
            },
            3s, 10ms);
    }

    // A request that needs the stalled HSM: 503 with Retry-After, within a
    // ceiling well above the call deadline (not a timing test).
    static std::chrono::milliseconds expect_refused_in_time(
        KeptConnection& portal, const char* what, const std::string& path,
        const std::optional<std::string>& body) {
        const auto started = std::chrono::steady_clock::now();
        const auto answer = portal.call(verb::post, path, body);
        const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - started);
        EXPECT_EQ(answer.status, 503) << what << ": " << answer.body;
        EXPECT_TRUE(says_retry_after(answer)) << what << ": " << answer.headers;
        EXPECT_LT(took, kCallTimeout + 4s) << what << ": " << took.count() << " ms";
        return took;
    }

    // Still the otpboxd the test started, and it never started serving again.
    void expect_same_daemon() const {
        EXPECT_TRUE(dev.daemon->running());
        const auto log = test::read_file(dev.daemon_log());
        std::size_t serving = 0;
        for (auto at = log.find("event=serving"); at != std::string::npos;
             at = log.find("event=serving", at + 1)) {
            ++serving;
        }
        EXPECT_EQ(serving, 1u);
    }

    // Throws rather than print a card's grid.
    // Every HSM call stalls for `stall` from just after a poll, whose next
    // look at the key versions meets it: true once the status file the poll
    // writes says the HSM stalls.
    bool poll_meets_a_stall(std::chrono::milliseconds stall) const {
        const auto status = dev.root() / "otpboxd.status.json";
        just_after_a_poll();
        set_fault("stall " + std::to_string(stall.count()));
        return test::wait_until(
            [&] { return test::read_file(status).find("\"stalled\"") != std::string::npos; }, 8s,
            100ms);
    }

    [[nodiscard]] std::filesystem::path status_file() const {
        return dev.root() / "otpboxd.status.json";
    }

    [[nodiscard]] bool status_says(const std::string& text, std::chrono::milliseconds wait) const {
        return test::wait_until(
            [&] { return test::read_file(status_file()).find(text) != std::string::npos; }, wait,
            100ms);
    }

    // The poll goes on: its status file is written again, twice, each time
    // within a little more than one poll.
    [[nodiscard]] bool poll_goes_on() const {
        for (int round = 0; round < 2; ++round) {
            std::error_code error;
            const auto written = std::filesystem::last_write_time(status_file(), error);
            const bool again = test::wait_until(
                [&] {
                    std::error_code now_error;
                    const auto now = std::filesystem::last_write_time(status_file(), now_error);
                    return !now_error && (error || now != written);
                },
                4s, 50ms);
            if (!again) {
                return false;
            }
        }
        return true;
    }

    // SIGTERM while a task of the poll waits in the stalled token: otpboxd
    // ends at once, as when its look at the key versions waits (status 3),
    // and names the task (one of tasks).
    void expect_sigterm_leaves_task_in_flight(const std::vector<std::string>& tasks) const {
        const auto started = std::chrono::steady_clock::now();
        EXPECT_EQ(dev.daemon->stop(10s), 3) << test::read_file(dev.daemon_log());
        EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
        const auto log = test::read_file(dev.daemon_log());
        EXPECT_TRUE(std::any_of(tasks.begin(), tasks.end(), [&](const std::string& task) {
            return log.find("event=stopped_with_hsm_call_in_flight what=" + task) !=
                   std::string::npos;
        })) << log;
    }

    // otpboxd ends by itself once the token refused its PIN, with the fatal
    // status: its log then, or none (a failure recorded) while it still runs
    // after 15 s.
    [[nodiscard]] std::optional<std::string> log_of_the_fatal_end() const {
        if (!test::wait_until([&] { return !dev.daemon->running(); }, 15s)) {
            ADD_FAILURE() << "otpboxd still runs with its PIN refused: "
                          << test::read_file(dev.daemon_log());
            return std::nullopt;
        }
        EXPECT_EQ(dev.daemon->stop(), 1) << test::read_file(dev.daemon_log());
        return test::read_file(dev.daemon_log());
    }

    // SIGTERM while every call is slow but in time: a clean stop (status 0)
    // that names no task as still in the HSM.
    void expect_clean_stop_with_no_call_in_flight() const {
        EXPECT_EQ(dev.daemon->stop(20s), 0) << test::read_file(dev.daemon_log());
        const auto log = test::read_file(dev.daemon_log());
        EXPECT_EQ(log.find("event=stopped_with_hsm_call_in_flight"), std::string::npos) << log;
    }

    // The token goes away and comes back: otpboxd has found it again, and
    // looks its keys up afresh when it next needs one.
    void token_lost_and_found() const {
        set_fault("removed");
        if (!status_says("token_gone", 10s)) {
            throw std::runtime_error("the token's loss was not seen");
        }
        set_fault("pass");
        if (!hsm_back_within(kRecovery)) {
            throw std::runtime_error("the token was not found again");
        }
    }

    CardLogin open_card_login(const std::string& user) const {
        const auto card = dev.call("POST", "/v1/users/" + user + "/pincards");
        if (card.status != 201) {
            throw std::runtime_error("issuing a card answered " + std::to_string(card.status));
        }
        const auto login = dev.call("POST", "/v1/users/" + user + "/login");
        if (login.status != 201 || login.field("method") != "pincard") {
            throw std::runtime_error("the login answered " + std::to_string(login.status));
        }
        return {"/v1/challenges/" + login.field("challenge") + "/verify",
                answer_from_grid(card.json(), login.json())};
    }

    DevInstance dev{DevInstance::kNotStarted};
};

TEST_F(HsmOutage, TokenRemoved_503AndHealthSaysWhyThenBackWithoutRestart) {
    ASSERT_EQ(dev.call("PUT", "/v1/users/e2e.gone/phone", R"({"number":"0170 5550101"})").status,
              200);
    KeptConnection portal(dev);

    set_fault("removed");
    const auto otp = portal.call(verb::post, "/v1/users/e2e.gone/otp");
    EXPECT_EQ(otp.status, 503) << otp.body;
    EXPECT_EQ(otp.field("error"), "unavailable");
    EXPECT_TRUE(says_retry_after(otp)) << otp.headers;

    const auto health = portal.call(verb::get, "/v1/health");
    EXPECT_EQ(health.status, 503) << health.body;
    EXPECT_EQ(health.field("status"), "down");
    EXPECT_FALSE(health.json().at("hsm").as_object().at("ok").as_bool());
    EXPECT_EQ(hsm_state(health), "token_gone") << health.body;
    EXPECT_TRUE(says_retry_after(health)) << health.headers;
    // The outage has a start in the log, and below an end.
    const auto logged = [&](const std::string& text) {
        return test::wait_until(
            [&] { return test::read_file(dev.daemon_log()).find(text) != std::string::npos; }, 5s);
    };
    EXPECT_TRUE(logged("event=hsm_state state=token_gone was=ok"));

    set_fault("pass");
    ASSERT_TRUE(hsm_back_within(kRecovery)) << test::read_file(dev.daemon_log());
    EXPECT_TRUE(logged("event=hsm_state state=ok was=token_gone"));
    expect_same_daemon();
    EXPECT_EQ(portal.call(verb::get, "/v1/health").status, 200);

    // A whole OTP login; the refused request sent no SMS.
    const auto again = dev.call("POST", "/v1/users/e2e.gone/otp");
    ASSERT_EQ(again.status, 201) << again.body;
    const auto code = dev.sms_code("1705550101");
    ASSERT_TRUE(code) << "no SMS in the outbox";
    const auto verify_path = "/v1/challenges/" + again.field("challenge") + "/verify";
    EXPECT_EQ(dev.call("POST", verify_path, verify_body(*code)).status, 200);
    EXPECT_FALSE(test::outbox_code(dev.outbox(), "1705550101", 2, 1s))
        << "an SMS went out for the refused request";
}

TEST_F(HsmOutage, TokenRemoved_TheRightAnswerIsNeitherRejectedNorUsedUp) {
    const auto login = open_card_login("e2e.right");
    KeptConnection portal(dev);

    set_fault("removed");
    const auto right = portal.call(verb::post, login.verify_path, verify_body(login.right));
    EXPECT_EQ(right.status, 503) << right.body;
    EXPECT_TRUE(says_retry_after(right)) << right.headers;
    const auto wrong =
        portal.call(verb::post, login.verify_path, verify_body(wrong_response(login.right)));
    EXPECT_EQ(wrong.status, 503) << wrong.body;

    set_fault("pass");
    ASSERT_TRUE(hsm_back_within(kRecovery)) << test::read_file(dev.daemon_log());

    // Nothing was counted meanwhile: this wrong answer is the first of five.
    const auto rejected =
        dev.call("POST", login.verify_path, verify_body(wrong_response(login.right)));
    EXPECT_EQ(rejected.status, 403) << rejected.body;
    EXPECT_EQ(rejected.field("error"), "rejected");
    EXPECT_EQ(rejected.json().at("attempts_left").as_int64(), 4);

    const auto accepted = dev.call("POST", login.verify_path, verify_body(login.right));
    EXPECT_EQ(accepted.status, 200) << accepted.body;
    EXPECT_EQ(dev.call("POST", login.verify_path, verify_body(login.right)).status, 410);
    expect_same_daemon();
}

// One request stalled in the HSM is answered 503 by the overrun itself, and
// holds up neither the next request nor the daemon's own poll, which may be
// waiting in the HSM too; once the HSM answers again, so does the daemon,
// without a restart.
TEST_F(HsmOutage, Stalled_EveryRequestIsAnsweredInTimeThenBackWithoutRestart) {
    const auto login = open_card_login("e2e.stall");
    KeptConnection portal(dev);

    just_after_a_poll();
    set_fault("stall " + std::to_string(kStall.count()));
    const auto took = expect_refused_in_time(portal, "the right answer", login.verify_path,
                                             verify_body(login.right));
    // The overrun itself answered it, not the request's own deadline
    // (api.answer_timeout_ms: twice the call deadline plus 1 s).
    EXPECT_LT(took, 2 * kCallTimeout + 1s) << took.count() << " ms";
    (void)expect_refused_in_time(portal, "another login", "/v1/users/e2e.stalls2/login",
                                 std::nullopt);

    set_fault("pass");
    ASSERT_TRUE(hsm_back_within(kRecovery)) << test::read_file(dev.daemon_log());
    const auto accepted = dev.call("POST", login.verify_path, verify_body(login.right));
    EXPECT_EQ(accepted.status, 200) << accepted.body;
    expect_same_daemon();
}

// While a call that overran is still in the module, health says the HSM
// stalls, and why.
TEST_F(HsmOutage, Stalled_HealthSaysSo) {
    KeptConnection portal(dev);

    set_fault("stall " + std::to_string(kStall.count()));
    const auto refused = portal.call(verb::post, "/v1/users/e2e.stallhealth/login");
    ASSERT_EQ(refused.status, 503) << refused.body;
    const auto health = portal.call(verb::get, "/v1/health");
    EXPECT_FALSE(health.json().at("hsm").as_object().at("ok").as_bool()) << health.body;
    EXPECT_EQ(hsm_state(health), "stalled") << health.body;
    const auto detail = health.json().at("hsm").as_object().at("detail").as_string();
    EXPECT_NE(std::string(detail).find("overran"), std::string::npos) << health.body;
    // The refused request's handler still waits in the module.
    const auto metrics = portal.call(verb::get, "/metrics");
    EXPECT_NE(metrics.body.find("\notpbox_requests_stuck 1\n"), std::string::npos) << metrics.body;

    set_fault("pass");
    EXPECT_TRUE(hsm_back_within(kRecovery));
}

// The server's TLS key is in the HSM (DESIGN.md: the TLS private key never
// leaves it) and every full handshake needs a signature, so while the token
// is gone a new client without a session ticket fails its handshake,
// promptly and cleanly (docs/api.md); a portal that keeps its connections
// alive, or resumes with a ticket, gets the 503. Once the token is back, new
// connections get in again.
TEST_F(HsmOutage, TokenRemoved_NewConnectionFailsItsHandshakeUntilBack) {
    set_fault("removed");
    const auto started = std::chrono::steady_clock::now();
    const auto refused = dev.call("POST", "/v1/users/e2e.fresh/login");
    EXPECT_EQ(refused.status, 0) << "an HTTP answer without the HSM's signature: " << refused.body;
    EXPECT_LT(std::chrono::steady_clock::now() - started, kCallTimeout + 4s);

    set_fault("pass");
    EXPECT_TRUE(hsm_back_within(kRecovery));
    EXPECT_NO_THROW((void)open_card_login("e2e.fresh"));
    expect_same_daemon();
}

// A resumed handshake needs no signature: a portal holding a ticket from
// before the outage gets in and is told 503 with Retry-After, not a TLS
// error.
TEST_F(HsmOutage, TokenRemoved_AClientWithATicketResumesAndGets503) {
    KeptConnection before(dev);
    ASSERT_EQ(before.call(verb::get, "/v1/health").status, 200);
    const auto ticket = before.session();
    ASSERT_TRUE(ticket) << "no session ticket came";

    set_fault("removed");
    KeptConnection during(dev, "portal", ticket);
    EXPECT_TRUE(during.resumed());
    (void)expect_refused_in_time(during, "login", "/v1/users/e2e.ticket/login", std::nullopt);
    EXPECT_EQ(dev.call("POST", "/v1/users/e2e.ticket/login").status, 0)
        << "a full handshake without the HSM";

    set_fault("pass");
    EXPECT_TRUE(hsm_back_within(kRecovery));
    EXPECT_NO_THROW((void)open_card_login("e2e.ticket"));
    expect_same_daemon();
}

// otpboxd's own poll asks the token for newer key versions on a thread of
// its own: while that waits in a stalled HSM, the poll goes on rewriting the
// status file (which the console reads), and the file says the HSM stalls.
TEST_F(HsmOutage, Stalled_ThePollGoesOnAndItsStatusFileSaysSo) {
    const auto status = dev.root() / "otpboxd.status.json";
    ASSERT_TRUE(poll_meets_a_stall(10s)) << test::read_file(status);
    const auto written = std::filesystem::last_write_time(status);
    EXPECT_TRUE(test::wait_until(
        [&] { return std::filesystem::last_write_time(status) != written; }, 5s, 50ms))
        << "the poll stopped while the HSM stalls";
    set_fault("pass");
    EXPECT_TRUE(hsm_back_within(15s)) << test::read_file(dev.daemon_log());
}

// Stopped while only its own look at the key versions waits in the HSM,
// otpboxd ends as after a stop with stuck requests (exit status 3), without
// finalising the module under that call.
TEST_F(HsmOutage, Stalled_SigtermWhileThePollsLookWaitsEndsWithStatus3) {
    ASSERT_TRUE(poll_meets_a_stall(20s)) << test::read_file(dev.root() / "otpboxd.status.json");
    const auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(dev.daemon->stop(10s), 3) << test::read_file(dev.daemon_log());
    EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
    EXPECT_NE(test::read_file(dev.daemon_log())
                  .find("event=stopped_with_hsm_call_in_flight what=key_version_lookup"),
              std::string::npos)
        << test::read_file(dev.daemon_log());
}

// A slow token whose calls each return in time: the stop waits for the
// look's call in progress, which ends within the call deadline, but the look
// must not go on to the next keys' calls then, or the stop would count it as
// stuck (exit status 3) although nothing stalled.
TEST_F(HsmOutage, SlowButEachCallInTime_SigtermWhileThePollsLookRunsEndsCleanly) {
    just_after_a_poll();
    set_fault("stall " + std::to_string((kCallTimeout * 8 / 10).count()));
    // A look asks the token once for each of the five keys: past the next
    // poll, one is under way and has most of its calls before it.
    just_after_a_poll();
    std::this_thread::sleep_for(kCallTimeout);
    expect_clean_stop_with_no_call_in_flight();
}

// A SIGTERM ends otpboxd in bounded time even while its own poll and a
// request's handler sit in an HSM call that does not come back.
TEST_F(HsmOutage, Stalled_SigtermStillEndsTheDaemon) {
    KeptConnection portal(dev);
    set_fault("stall 30000");
    const auto refused = portal.call(verb::post, "/v1/users/e2e.term/login");
    EXPECT_EQ(refused.status, 503) << refused.body;
    std::this_thread::sleep_for(2500ms);  // the daemon's poll meets the stall too

    const auto started = std::chrono::steady_clock::now();
    const int code = dev.daemon->stop(15s);
    EXPECT_GE(code, 0) << "otpboxd did not end on SIGTERM and was killed";
    EXPECT_LT(std::chrono::steady_clock::now() - started, kCallTimeout + 8s);
    const auto log = test::read_file(dev.daemon_log());
    EXPECT_NE(log.find("event=stopping"), std::string::npos);
    EXPECT_TRUE(log.find("event=stop_overdue") != std::string::npos ||
                log.find("event=stopped_with_stuck_requests") != std::string::npos)
        << log;
}

TEST_F(HsmOutage, SessionLostOnce_IsInvisible) {
    const auto login = open_card_login("e2e.session");
    KeptConnection portal(dev);

    just_after_a_poll();
    set_fault("session_invalid 1");
    const auto accepted = portal.call(verb::post, login.verify_path, verify_body(login.right));
    EXPECT_EQ(accepted.status, 200) << accepted.body;
    EXPECT_EQ(accepted.field("result"), "accepted");

    set_fault("not_logged_in 1");
    const auto next = portal.call(verb::post, "/v1/users/e2e.session/login");
    EXPECT_EQ(next.status, 201) << next.body;

    const auto health = portal.call(verb::get, "/v1/health");
    EXPECT_EQ(health.status, 200) << health.body;
    EXPECT_EQ(hsm_state(health), "ok");
}

// A slow HSM whose every call stays under its deadline: the request's own
// deadline (twice the call deadline plus 1 s) passes first, the client gets
// 503, and the verify goes on. Its work must not be done behind that 503
// (docs/limitations.md: "Requests held up by the HSM do not").
TEST_F(HsmOutage, SlowButEachCallInTime_TheRightAnswerIsNotUsedUpBehindA503) {
    const auto login = open_card_login("e2e.slow");
    KeptConnection portal(dev);

    just_after_a_poll();
    set_fault("stall " + std::to_string((kCallTimeout * 9 / 10).count()));
    const auto answer = portal.call(verb::post, login.verify_path, verify_body(login.right));
    set_fault("pass");
    ASSERT_TRUE(hsm_back_within(kRecovery)) << test::read_file(dev.daemon_log());
    if (answer.status == 503) {
        const auto again = dev.call("POST", login.verify_path, verify_body(login.right));
        EXPECT_EQ(again.status, 200) << "the right answer was used up behind a 503: " << again.body;
    } else {
        EXPECT_EQ(answer.status, 200) << answer.body;
    }
}

// A login and a verify while the HSM stalls: the login holds the database
// lock in its stalled call (a new challenge's random cells and id come from
// the HSM inside its transaction), the verify waits for the lock before its
// own HSM work and meets its deadline there (not an HSM overrun). When the
// HSM is back, the verify must not be done behind the 503 its client got.
TEST_F(HsmOutage, Stalled_ARequestQueuedBehindTheStalledOneIsNotDoneAfterIts503) {
    (void)open_card_login("e2e.first");
    const auto second = open_card_login("e2e.second");
    KeptConnection portal_a(dev);
    KeptConnection portal_b(dev);

    just_after_a_poll();
    set_fault("stall " + std::to_string(kStall.count()));
    HttpAnswer answer_a;
    std::thread a([&] { answer_a = portal_a.call(verb::post, "/v1/users/e2e.first/login"); });
    std::this_thread::sleep_for(100ms);
    const auto answer_b = portal_b.call(verb::post, second.verify_path, verify_body(second.right));
    a.join();
    // Back before the stalled call returns and lets the verify in.
    set_fault("pass");
    EXPECT_EQ(answer_a.status, 503) << answer_a.body;
    ASSERT_EQ(answer_b.status, 503) << answer_b.body;

    ASSERT_TRUE(hsm_back_within(kRecovery)) << test::read_file(dev.daemon_log());
    const auto again = dev.call("POST", second.verify_path, verify_body(second.right));
    EXPECT_EQ(again.status, 200) << "the right answer was used up behind a 503: " << again.body;
}

// docs/architecture.md: stopped while a handler is still inside an HSM call,
// otpboxd logs event=stopped_with_stuck_requests and ends.
TEST_F(HsmOutage, Stalled_SigtermEndsTheDaemonWhileAVerifyIsStuck) {
    const auto login = open_card_login("e2e.stop");
    KeptConnection portal(dev);

    just_after_a_poll();
    set_fault("stall 60000");
    const auto refused = portal.call(verb::post, login.verify_path, verify_body(login.right));
    ASSERT_EQ(refused.status, 503) << refused.body;
    set_fault("pass");

    const auto started = std::chrono::steady_clock::now();
    const int status = dev.daemon->stop(10s);
    EXPECT_EQ(status, 3) << "otpboxd did not end on SIGTERM within 10 s, or not with the status "
                            "of a stop with stuck requests: "
                         << test::read_file(dev.daemon_log());
    EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
    EXPECT_NE(test::read_file(dev.daemon_log()).find("event=stopped_with_stuck_requests"),
              std::string::npos);
}

// A SIM PIN stored at the console is opened (the HSM decrypts it) by a task
// of the poll's own: while that waits in a stalled token, the poll goes on.
TEST_F(HsmOutage, Stalled_ANewSimPinHoldsUpNotThePollAndSigtermEndsWithStatus3) {
    {
        // As the console stores it: its own connection to the database and
        // the token, made before the stall.
        const auto config = firmware::load_config(dev.root() / "otpbox.toml");
        firmware::Database database(config.database);
        firmware::Secrets secrets(hsm::Hsm::open(config.hsm));
        just_after_a_poll();
        firmware::store_sim_pin(database, secrets, "modem0", "2468",
                                std::chrono::system_clock::now());
    }
    set_fault("stall 20000");
    std::this_thread::sleep_for(2500ms);  // the next poll has seen the new PIN
    EXPECT_TRUE(poll_goes_on()) << "the poll waits for the stalled token";
    expect_sigterm_leaves_task_in_flight({"sim_pins"});
}

// A changed TLS file makes the poll load the TLS key from the token again,
// on a task of its own: while that waits in a stalled token, the poll goes
// on. The key's handle is looked up afresh after an outage, so the reload
// meets the stall.
TEST_F(HsmOutage, Stalled_ATlsReloadHoldsUpNotThePollAndSigtermEndsWithStatus3) {
    token_lost_and_found();
    const auto certificate = dev.root() / "pki" / "server.crt";
    const auto text = test::read_file(certificate);
    just_after_a_poll();
    test::write_file(certificate.string() + ".next", text);
    std::filesystem::rename(certificate.string() + ".next", certificate);
    set_fault("stall 20000");
    std::this_thread::sleep_for(2500ms);  // the next poll has seen the new file
    EXPECT_TRUE(poll_goes_on()) << "the poll waits for the stalled token";
    expect_sigterm_leaves_task_in_flight({"tls_reload"});
}

// The poll looks for a lost token on a task of its own: a module that hangs
// while the token is found again holds up that task (or the look at the key
// versions, when its call came first and found the token gone), not the
// poll, and health (in the status file) still answers that it is gone.
TEST_F(HsmOutage, TokenRemovedThenStalled_TheLookForItHoldsUpNotThePoll) {
    set_fault("removed");
    ASSERT_TRUE(status_says("token_gone", 10s)) << test::read_file(status_file());
    set_fault("stall 20000");
    std::this_thread::sleep_for(2500ms);  // the poll's next look meets the stall
    EXPECT_TRUE(poll_goes_on()) << "the poll waits for the stalled token";
    EXPECT_NE(test::read_file(status_file()).find("token_gone"), std::string::npos)
        << test::read_file(status_file());
    expect_sigterm_leaves_task_in_flight({"hsm_probe", "key_version_lookup"});
}

// A PIN the token refuses when otpboxd finds it again after an outage is
// fatal, as at the start. A request still stuck in the HSM does not hide
// it: the log says why otpboxd stopped and that a call was left in flight,
// and the exit status is the fatal one (docs/architecture.md).
TEST_F(HsmOutage, PinRefusedOnReconnectWhileARequestIsStuck_LogsTheFatalErrorAndEndsWith1) {
    KeptConnection portal(dev);
    just_after_a_poll();
    set_fault("stall 60000");
    const auto stuck = portal.call(verb::post, "/v1/users/e2e.fatal/login");
    ASSERT_EQ(stuck.status, 503) << stuck.body;

    // A new connection's handshake signs with the TLS key in the token and
    // sees it go, whatever the poll waits for.
    set_fault("removed");
    EXPECT_EQ(dev.call("GET", "/v1/health").status, 0);
    ASSERT_TRUE(status_says("token_gone", 10s)) << test::read_file(status_file());

    set_fault("pin_incorrect");
    const auto ended = log_of_the_fatal_end();
    ASSERT_TRUE(ended);
    const auto& log = *ended;
    EXPECT_NE(log.find("event=stopped_with_stuck_requests count=1"), std::string::npos) << log;
    EXPECT_NE(log.find("critical event=fatal error=\"HSM login refused: "), std::string::npos)
        << log;
    EXPECT_NE(log.find("CKR_PIN_INCORRECT"), std::string::npos) << log;
    // It took the ordinary stop, which tries to write the audit anchor; the
    // stuck request may hold the database, and the anchor is then skipped.
    EXPECT_TRUE(log.find("event=audit_anchor seq=") != std::string::npos ||
                log.find("event=audit_anchor_skipped") != std::string::npos)
        << log;
}

// The same refusal with nothing stuck: otpboxd stops as on a SIGTERM (the
// server and the modem pool stopped, the audit anchor written, naming the
// latest audit row), and then ends with the fatal status.
TEST_F(HsmOutage, PinRefusedOnReconnect_StopsInOrderWritesTheAuditAnchorAndEndsWith1) {
    (void)open_card_login("e2e.anchor");  // an issuance and a login: audit rows
    set_fault("removed");
    ASSERT_TRUE(status_says("token_gone", 10s)) << test::read_file(status_file());

    set_fault("pin_incorrect");
    const auto ended = log_of_the_fatal_end();
    ASSERT_TRUE(ended);
    const auto& log = *ended;
    const auto fatal = log.find("critical event=fatal error=\"HSM login refused: ");
    ASSERT_NE(fatal, std::string::npos) << log;
    EXPECT_NE(log.find("event=stopping reason=fatal"), std::string::npos) << log;
    EXPECT_EQ(log.find("event=stopped_with_"), std::string::npos) << log;

    // The anchor is written at the stop, before the fatal error is logged,
    // and names the last audit row (the one before it was taken when serving
    // began; the periodic one comes only after 60 s).
    const auto anchor = log.rfind("event=audit_anchor seq=", fatal);
    ASSERT_NE(anchor, std::string::npos) << log;
    const auto config = firmware::load_config(dev.root() / "otpbox.toml");
    firmware::Database database(config.database);
    const auto last_row = database.read([&] {
        auto statement = database.prepare("SELECT max(seq) FROM audit");
        return statement.step() ? statement.integer(0) : std::int64_t{0};
    });
    EXPECT_GT(last_row, 0);
    EXPECT_EQ(std::stoll(log.substr(anchor + std::string_view("event=audit_anchor seq=").size())),
              last_row)
        << log;
}

// Requests stuck in the HSM do not hide the poll's own task stuck there:
// the stop waits one call deadline for it and names it too.
TEST_F(HsmOutage, Stalled_SigtermWithARequestStuckNamesThePollsTaskInFlightToo) {
    KeptConnection portal(dev);
    just_after_a_poll();
    set_fault("stall 20000");
    // Once a call overran, requests are refused before they reach the HSM:
    // the request is stuck first, then the poll's look meets the stall (its
    // key versions are asked again every other poll at the latest).
    const auto stuck = portal.call(verb::post, "/v1/users/e2e.both/login");
    ASSERT_EQ(stuck.status, 503) << stuck.body;
    std::this_thread::sleep_for(4500ms);

    const auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(dev.daemon->stop(10s), 3) << test::read_file(dev.daemon_log());
    EXPECT_LT(std::chrono::steady_clock::now() - started, 8s);
    const auto log = test::read_file(dev.daemon_log());
    EXPECT_NE(log.find("event=stopped_with_stuck_requests count=1"), std::string::npos) << log;
    EXPECT_NE(log.find("event=stopped_with_hsm_call_in_flight what=key_version_lookup"),
              std::string::npos)
        << log;
}

// The stored SIM PINs are opened one modem at a time, an HSM call each: a
// slow token whose every call is in time must not make the stop name the
// task (exit status 3) because it has many modems' PINs to open. The stop
// lets the task finish the PIN it is opening and open no further one.
TEST_F(HsmOutage, SlowButEachCallInTime_SigtermWhileManySimPinsAreOpenedEndsCleanly) {
    constexpr int kModems = 8;
    EXPECT_EQ(dev.daemon->stop(), 0) << test::read_file(dev.daemon_log());
    std::string modems;
    for (int modem = 1; modem < kModems; ++modem) {
        const auto name = "modem" + std::to_string(modem);
        modems += "[[modems]]\nname = \"" + name + "\"\ndevice = \"modem/" + name + "\"\n\n";
    }
    dev.replace_in_config("[pincard]\n", modems + "[pincard]\n");
    dev.start_daemon();

    {
        // As the console stores them, through its own connection and token.
        const auto config = firmware::load_config(dev.root() / "otpbox.toml");
        firmware::Database database(config.database);
        firmware::Secrets secrets(hsm::Hsm::open(config.hsm));
        just_after_a_poll();
        for (int modem = 0; modem < kModems; ++modem) {
            firmware::store_sim_pin(database, secrets, "modem" + std::to_string(modem), "2468",
                                    std::chrono::system_clock::now());
        }
    }
    // Each call a fifth of its deadline: opening one PIN (a session, the
    // key, the decryption) stays within one deadline, all of them do not.
    set_fault("stall " + std::to_string((kCallTimeout / 5).count()));
    just_after_a_poll();  // that poll saw the new PINs and began to open them
    std::this_thread::sleep_for(kCallTimeout / 10);

    expect_clean_stop_with_no_call_in_flight();
}

// A PIN the token refuses when a lost login is renewed is fatal too: the
// login's refusal shows in health, so the poll's look for the token hears it
// and ends otpboxd, instead of every later call offering the PIN again.
TEST_F(HsmOutage, PinRefusedOnLoginAgain_LogsTheFatalErrorAndEndsWith1) {
    KeptConnection portal(dev);
    just_after_a_poll();
    set_fault("not_logged_in 100000 pin_incorrect");
    (void)portal.call(verb::post, "/v1/users/e2e.fatal/login");
    const auto ended = log_of_the_fatal_end();
    ASSERT_TRUE(ended);
    const auto& log = *ended;
    EXPECT_NE(log.find("critical event=fatal error=\"HSM login refused: "), std::string::npos)
        << log;
    EXPECT_NE(log.find("CKR_PIN_INCORRECT"), std::string::npos) << log;
}

// A modem's worker opens the next SMS with the HSM before it sends it: in a
// token that keeps the call, it holds the stop of the modem pool. The
// stop's watch ends otpboxd all the same once the stop has taken longer
// than all its deadlines together (here about 25 s: the strand's 5.5 s, 2 s
// for handlers, 11 s for a modem coming up and sending its one part, twice
// 0.5 s for the HSM and 5 s), with the status of a stop that left a call in
// the HSM.
TEST_F(HsmOutage, Stalled_AModemWorkerHeldInTheTokenCannotHoldTheStopForever) {
    ASSERT_EQ(dev.daemon->stop(10s), 0) << test::read_file(dev.daemon_log());
    dev.simulator.reset();
    dev.replace_in_config("baud = 115200\n",
                          "baud = 115200\nsend_timeout_ms = 4000\ncommand_timeout_ms = 1000\n");
    dev.start_simulator({"--latency-ms", "2500"});
    dev.start_daemon();

    // The first SMS keeps the modem busy for 2.5 s; the second waits in the
    // queue, and the worker opens it when the first is done.
    for (const std::string user : {"e2e.first.sms", "e2e.second.sms"}) {
        ASSERT_EQ(
            dev.call("PUT", "/v1/users/" + user + "/phone", R"({"number":"0170 7654321"})").status,
            200);
        const auto otp = dev.call("POST", "/v1/users/" + user + "/otp");
        ASSERT_EQ(otp.status, 201) << otp.body;
    }
    set_fault("stall 120000");
    std::this_thread::sleep_for(4s);

    const auto started = std::chrono::steady_clock::now();
    const int status = dev.daemon->stop(50s);
    const auto log = test::read_file(dev.daemon_log());
    EXPECT_EQ(status, 3) << log;
    EXPECT_LT(std::chrono::steady_clock::now() - started, 45s);
    EXPECT_NE(log.find("event=stop_unfinished"), std::string::npos) << log;
}

}  // namespace
}  // namespace otpbox::e2e
