// The modem pool: workers taking from a real queue and sending through
// scripted modems on real pseudo-terminal pairs.

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "otpbox/gsm/modem_pool.hpp"
#include "scripted_modem.hpp"
#include "test_support.hpp"

namespace otpbox::gsm {
namespace {

using namespace std::chrono_literals;
using fake::ScriptedModem;
using fake::SimBehaviour;

// Not encryption: the pool only needs the queue to round-trip.
class PlainSealer final : public Sealer {
  public:
    std::vector<std::uint8_t> seal(std::string_view plaintext, std::string_view) override {
        return {plaintext.begin(), plaintext.end()};
    }
    std::optional<std::string> open(std::span<const std::uint8_t> sealed,
                                    std::string_view) override {
        return std::string(sealed.begin(), sealed.end());
    }
};

ModemConfig config_for(const std::string& name, const ScriptedModem& fake) {
    ModemConfig config;
    config.name = name;
    config.device = fake.settings().device;
    config.command_timeout = 300ms;
    config.send_timeout = 2s;
    config.registration_wait = 1s;
    return config;
}

// The texts of the PDUs a fake modem took, in order.
std::vector<std::string> sent_texts(ScriptedModem& fake) {
    std::vector<std::string> texts;
    const auto seen = fake.received();
    for (auto end = seen.find('\x1a'); end != std::string::npos; end = seen.find('\x1a', end + 1)) {
        const auto start = seen.rfind('\r', end) + 1;
        const auto hex = seen.substr(start, end - start);
        // A reset's ESC and Ctrl-Z carry no PDU.
        if (!hex.empty() && hex.find_first_not_of("0123456789ABCDEFabcdef") == std::string::npos) {
            texts.push_back(decode_submit(hex).text);
        }
    }
    return texts;
}

class ModemPool_Sending : public ::testing::Test {
  protected:
    [[nodiscard]] bool a_long_sms_fails(ModemPool& pool);
    void enqueue(int count) {
        for (int index = 0; index < count; ++index) {
            const auto id = "sms-" + std::to_string(index);
            m_ids.push_back(id);
            m_queue.enqueue({id, "+491701234567", "Code " + std::to_string(100000 + index),
                             std::chrono::system_clock::now() + 600s});
        }
    }
    bool all_in(SmsStatus status, std::chrono::milliseconds timeout = 20s) {
        return test::wait_until(
            [&] {
                return std::all_of(m_ids.begin(), m_ids.end(), [&](const std::string& id) {
                    return m_queue.find(id)->status == status;
                });
            },
            timeout);
    }
    // Sent, and maybe already reported delivered by the simulator.
    bool all_sent() {
        return test::wait_until(
            [&] {
                return std::all_of(m_ids.begin(), m_ids.end(), [&](const std::string& id) {
                    const auto status = m_queue.find(id)->status;
                    return status == SmsStatus::sent || status == SmsStatus::delivered;
                });
            },
            30s);
    }
    std::optional<ModemHealth> health_of(ModemPool& pool, const std::string& name) {
        for (auto& health : pool.health()) {
            if (health.name == name) {
                return health;
            }
        }
        return std::nullopt;
    }

    test::TempDir m_dir;
    SmsQueue m_queue{m_dir.path() / "otpbox.db", std::make_shared<PlainSealer>()};
    std::vector<std::string> m_ids;
};

TEST_F(ModemPool_Sending, TenSmsThroughTwoModemsEachSentOnce) {
    ScriptedModem first(fake::sim_modem({}));
    ScriptedModem second(fake::sim_modem({}));
    ModemPool pool({config_for("modem0", first), config_for("modem1", second)}, m_queue);
    enqueue(10);

    pool.start();

    ASSERT_TRUE(all_in(SmsStatus::sent));
    pool.stop();
    std::map<std::string, int> seen;
    for (auto* fake : {&first, &second}) {
        for (const auto& text : sent_texts(*fake)) {
            ++seen[text];
        }
    }
    ASSERT_EQ(seen.size(), 10u);
    for (const auto& [text, times] : seen) {
        EXPECT_EQ(times, 1) << text;
    }
    std::size_t sent = 0;
    for (const auto& health : pool.health()) {
        sent += health.sent;
        EXPECT_EQ(health.state, "stopped");
    }
    EXPECT_EQ(sent, 10u);
}

TEST_F(ModemPool_Sending, ModemWithoutPromptIsTakenOutAndTheOtherSends) {
    ScriptedModem mute(fake::sim_modem({.prompt = false}));
    ScriptedModem good(fake::sim_modem({}));
    ModemPool pool({config_for("modem0", mute)}, m_queue);
    enqueue(3);
    pool.start();
    ASSERT_TRUE(
        test::wait_until([&] { return health_of(pool, "modem0")->state == "failed"; }, 10s));
    pool.stop();

    ModemPool both({config_for("modem0", mute), config_for("modem1", good)}, m_queue);
    both.start();

    ASSERT_TRUE(all_in(SmsStatus::sent));
    EXPECT_EQ(sent_texts(good).size(), 3u);
    EXPECT_TRUE(sent_texts(mute).empty());
    const auto health = health_of(pool, "modem0");
    EXPECT_NE(health->last_error.find("prompt"), std::string::npos);
}

TEST_F(ModemPool_Sending, HungUpModemsMessagesGoToTheOther) {
    ScriptedModem gone(fake::sim_modem({}));
    ScriptedModem good(fake::sim_modem({}));
    ModemPool pool({config_for("modem0", gone), config_for("modem1", good)}, m_queue);
    pool.start();
    ASSERT_TRUE(test::wait_until([&] { return health_of(pool, "modem0")->state == "ready"; }, 10s));

    gone.close_master();
    enqueue(6);

    ASSERT_TRUE(all_in(SmsStatus::sent));
    EXPECT_EQ(sent_texts(good).size(), 6u);
}

TEST_F(ModemPool_Sending, PermanentErrorFailsTheMessageOnly) {
    ScriptedModem refusing(fake::sim_modem({.after_pdu = "\r\n+CMS ERROR: 1\r\n"}));
    ModemPool pool({config_for("modem0", refusing)}, m_queue);
    enqueue(2);

    pool.start();

    ASSERT_TRUE(all_in(SmsStatus::failed));
    const auto health = health_of(pool, "modem0");
    EXPECT_EQ(health->state, "ready");
    EXPECT_EQ(health->failed, 2u);
    EXPECT_NE(m_queue.find("sms-0")->failure.find("unassigned"), std::string::npos);
}

// The OK after +CMGS never came: the SMS went once, and health says why the
// modem was reset and counts each such reset, though the modem is ready
// again at once.
TEST_F(ModemPool_Sending, AReferenceWithoutItsOkIsSentOnceAndShownInHealth) {
    ScriptedModem modem(fake::sim_modem({.after_pdu = "\r\n+CMGS: 7\r\n"}));
    ModemPool pool({config_for("modem0", modem)}, m_queue);
    enqueue(2);
    pool.start();

    ASSERT_TRUE(all_in(SmsStatus::sent));
    ASSERT_TRUE(test::wait_until([&] { return health_of(pool, "modem0")->resets == 2; }, 10s))
        << health_of(pool, "modem0")->resets;
    const auto health = health_of(pool, "modem0");
    EXPECT_EQ(health->last_reset,
              "AT+CMGS: no final result after the reference (AT+CMGS: timeout: no final result "
              "before the deadline); the SMS counts as sent and the modem was reset");
    EXPECT_EQ(health->last_error, health->last_reset);
    EXPECT_EQ(health->sent, 2u);
    EXPECT_EQ(health->failed, 0u);
    EXPECT_EQ(sent_texts(modem).size(), 2u);
    EXPECT_TRUE(test::wait_until([&] { return health_of(pool, "modem0")->state == "ready"; }, 5s));
}

// A modem that answers OK to every AT+CMGS without its +CMGS line may have
// sent each time: the SMS is handed to it kMaxAttempts times, then fails
// with the reason, and the modem counts it as failed.
TEST_F(ModemPool_Sending, AnOkWithoutAReferenceIsTriedAtMostThreeTimes) {
    ScriptedModem modem(fake::sim_modem({.after_pdu = "\r\nOK\r\n"}));
    ModemPool pool({config_for("modem0", modem)}, m_queue);
    enqueue(1);
    pool.start();

    ASSERT_TRUE(all_in(SmsStatus::failed, 30s))
        << "status " << status_name(m_queue.find("sms-0")->status);
    EXPECT_NE(m_queue.find("sms-0")->failure.find("not sent after 3 hand-overs"), std::string::npos)
        << m_queue.find("sms-0")->failure;
    ASSERT_TRUE(test::wait_until([&] { return health_of(pool, "modem0")->failed == 1u; }, 5s));
    pool.stop();
    EXPECT_EQ(sent_texts(modem).size(), static_cast<std::size_t>(kMaxAttempts));
}

// A script that answers the second PDU with answer and every other one as
// sim_modem does.
ScriptedModem::Script second_pdu_answered(std::string answer) {
    auto pdus = std::make_shared<int>(0);
    return [pdus, answer, sim = fake::sim_modem({})](const std::string& line) {
        if (line.ends_with('\x1a') && ++*pdus == 2) {
            return answer;
        }
        return sim(line);
    };
}

// A stop asked for while a modem comes up: the worker takes no SMS after it,
// so the stop does not wait for a send it could have spared.
TEST_F(ModemPool_Sending, AStopWhileTheModemComesUpSendsNothing) {
    std::promise<void> coming_up;
    auto seen = coming_up.get_future();
    std::once_flag once;
    ScriptedModem modem([&, sim = fake::sim_modem({})](const std::string& line) {
        if (line == "AT+CNMI=2,1,0,1,0") {
            std::call_once(once, [&] { coming_up.set_value(); });
            std::this_thread::sleep_for(150ms);  // within the command timeout
        }
        return sim(line);
    });
    ModemPool pool({config_for("modem0", modem)}, m_queue);
    enqueue(1);
    pool.start();
    ASSERT_EQ(seen.wait_for(10s), std::future_status::ready);

    pool.stop();

    EXPECT_EQ(modem.received().find('\x1a'), std::string::npos) << "an SMS went out in the stop";
    EXPECT_EQ(m_queue.find(m_ids[0])->status, SmsStatus::queued);
}

// Queues a two-part SMS "long", starts the pool, and says whether the SMS
// ended failed within 10 s.
bool ModemPool_Sending::a_long_sms_fails(ModemPool& pool) {
    m_queue.enqueue(
        {"long", "+491701234567", std::string(200, 'a'), std::chrono::system_clock::now() + 600s});
    pool.start();
    return test::wait_until([&] { return m_queue.find("long")->status == SmsStatus::failed; }, 10s);
}

// A long SMS whose second part the network refuses for now cannot go back to
// the queue, since its first part would arrive twice: it fails, and counts as
// one failure of the modem, which goes on sending.
TEST_F(ModemPool_Sending, ALongSmsCutOffAfterItsFirstPartCountsAsOneFailure) {
    ScriptedModem modem(second_pdu_answered("\r\n+CMS ERROR: 38\r\n"));
    ModemPool pool({config_for("modem0", modem)}, m_queue);
    ASSERT_TRUE(a_long_sms_fails(pool));

    // The refusal is the network's, not the modem's: it stays ready.
    enqueue(1);
    ASSERT_TRUE(test::wait_until([&] { return health_of(pool, "modem0")->sent == 1; }, 10s));
    const auto health = health_of(pool, "modem0");
    EXPECT_EQ(health->failed, 1u);
    EXPECT_EQ(health->state, "ready");
    EXPECT_EQ(health->resets, 0u);
    EXPECT_EQ(m_queue.find("long")->failure, "stopped after a part was sent");
}

// The first part's OK never came: the modem is reset, the second part is not
// sent, and the SMS fails. That is one failure and one reset, also after the
// modem is back.
TEST_F(ModemPool_Sending, ALongSmsWhoseFirstPartLostItsOkFailsOnceAndCountsTheReset) {
    ScriptedModem modem(fake::sim_modem({.after_pdu = "\r\n+CMGS: 7\r\n"}));
    ModemPool pool({config_for("modem0", modem)}, m_queue);
    ASSERT_TRUE(a_long_sms_fails(pool));

    // Taken out for a pause of 2 s, then opened again.
    ASSERT_TRUE(test::wait_until([&] { return health_of(pool, "modem0")->state == "failed"; }, 5s));
    ASSERT_TRUE(test::wait_until([&] { return health_of(pool, "modem0")->state == "ready"; }, 10s));
    const auto health = health_of(pool, "modem0");
    EXPECT_EQ(health->failed, 1u);
    EXPECT_EQ(health->sent, 0u);
    EXPECT_EQ(health->resets, 1u);
    EXPECT_NE(health->last_reset.find("of part 1 of 2"), std::string::npos) << health->last_reset;
    const auto seen = modem.received();
    std::size_t commands = 0;
    for (auto at = seen.find("AT+CMGS="); at != std::string::npos;
         at = seen.find("AT+CMGS=", at + 1)) {
        ++commands;
    }
    EXPECT_EQ(commands, 1u);
}

TEST_F(ModemPool_Sending, DeliveryReportMarksDelivered) {
    ScriptedModem modem(fake::sim_modem({}));
    ModemPool pool({config_for("modem0", modem)}, m_queue);
    enqueue(1);
    pool.start();
    ASSERT_TRUE(all_in(SmsStatus::sent));

    const auto reference = m_queue.find("sms-0")->references.at(0);
    const auto pdu =
        encode_status_report({reference, "+491701234567", 0, DeliveryClass::delivered});
    modem.write("\r\n+CDS: " + std::to_string(pdu.size() / 2 - 1) + "\r\n" + pdu + "\r\n");

    EXPECT_TRUE(all_in(SmsStatus::delivered));
}

TEST_F(ModemPool_Sending, LockedSimIsParkedAfterOnePinTry) {
    ScriptedModem locked(fake::sim_modem({.pin = "4711"}));
    auto config = config_for("modem0", locked);
    config.sim_pin = "0000";
    ModemPool pool({config}, m_queue);
    enqueue(1);

    pool.start();

    ASSERT_TRUE(
        test::wait_until([&] { return health_of(pool, "modem0")->state == "sim_locked"; }, 10s));
    pool.stop();
    const auto seen = locked.received();
    EXPECT_EQ(seen.find("AT+CPIN=\""), seen.rfind("AT+CPIN=\""));
    EXPECT_EQ(m_queue.find("sms-0")->status, SmsStatus::queued);
}

TEST_F(ModemPool_Sending, HealthShowsRegistrationAndSignal) {
    ScriptedModem modem(fake::sim_modem({.creg = 5}));
    ModemPool pool({config_for("modem0", modem)}, m_queue);

    pool.start();

    ASSERT_TRUE(test::wait_until([&] { return health_of(pool, "modem0")->state == "ready"; }, 10s));
    const auto health = health_of(pool, "modem0");
    EXPECT_EQ(health->registration, "roaming");
    EXPECT_EQ(health->signal_rssi, 17);
}

// otpbox-modemsim on its own pseudo-terminal, writing its own outbox.
class Simulator {
  public:
    Simulator(const std::filesystem::path& dir, const std::string& name,
              std::vector<std::string> options = {})
        : m_link(dir / name), m_outbox(dir / (name + ".jsonl")) {
        std::vector<std::string> argv{test::program_path("otpbox-modemsim").string(), "--link",
                                      m_link.string(), "--outbox", m_outbox.string()};
        argv.insert(argv.end(), options.begin(), options.end());
        m_process = std::make_unique<test::ChildProcess>(argv, std::vector<std::string>{},
                                                         dir / (name + ".log"));
        if (!test::wait_until([&] { return std::filesystem::exists(m_link); }, 10s)) {
            throw std::runtime_error("the simulator made no link");
        }
    }

    [[nodiscard]] ModemConfig config(const std::string& name) const {
        ModemConfig config;
        config.name = name;
        config.device = m_link;
        config.command_timeout = 1s;
        config.send_timeout = 5s;
        config.registration_wait = 2s;
        return config;
    }

    // The "text" of every outbox line.
    [[nodiscard]] std::vector<std::string> texts() const {
        std::vector<std::string> texts;
        std::ifstream in(m_outbox);
        for (std::string line; std::getline(in, line);) {
            if (!line.empty()) {
                texts.emplace_back(boost::json::parse(line).at("text").as_string());
            }
        }
        return texts;
    }

    test::ChildProcess& process() { return *m_process; }

  private:
    std::filesystem::path m_link;
    std::filesystem::path m_outbox;
    std::unique_ptr<test::ChildProcess> m_process;
};

class ModemPool_Simulator : public ModemPool_Sending {
  protected:
    // Every enqueued text exactly once over all outboxes.
    void expect_each_once(std::initializer_list<const Simulator*> simulators) {
        std::map<std::string, int> seen;
        for (const auto* simulator : simulators) {
            for (const auto& text : simulator->texts()) {
                ++seen[text];
            }
        }
        EXPECT_EQ(seen.size(), m_ids.size());
        for (const auto& [text, times] : seen) {
            EXPECT_EQ(times, 1) << text;
        }
    }
};

TEST_F(ModemPool_Simulator, TenSmsThroughTwoSimulatorsEachSentOnce) {
    Simulator first(m_dir.path(), "sim0");
    Simulator second(m_dir.path(), "sim1", {"--urc-during-send", "--bare-prompt"});
    ModemPool pool({first.config("modem0"), second.config("modem1")}, m_queue);
    enqueue(10);

    pool.start();

    ASSERT_TRUE(all_sent());
    EXPECT_TRUE(
        test::wait_until([&] { return first.texts().size() + second.texts().size() >= 10; }, 5s));
    expect_each_once({&first, &second});
}

TEST_F(ModemPool_Simulator, KilledSimulatorFailsOver) {
    Simulator doomed(m_dir.path(), "sim0");
    Simulator survivor(m_dir.path(), "sim1");
    ModemPool pool({doomed.config("modem0"), survivor.config("modem1")}, m_queue);
    pool.start();
    ASSERT_TRUE(test::wait_until(
        [&] {
            const auto health = pool.health();
            return health[0].state == "ready" && health[1].state == "ready";
        },
        15s));

    doomed.process().kill_hard();
    enqueue(6);

    ASSERT_TRUE(all_sent());
    EXPECT_TRUE(test::wait_until([&] { return survivor.texts().size() >= 6; }, 5s));
    expect_each_once({&doomed, &survivor});

    // The dead modem's health no longer shows the network it had.
    ASSERT_TRUE(test::wait_until([&] { return pool.health()[0].state == "failed"; }, 15s))
        << pool.health()[0].state;
    EXPECT_EQ(pool.health()[0].registration, "unknown");
    EXPECT_EQ(pool.health()[0].signal_rssi, 99);
    EXPECT_FALSE(pool.health()[0].last_error.empty());
}

TEST_F(ModemPool_Simulator, SimulatorWithoutPromptFailsOver) {
    Simulator mute(m_dir.path(), "sim0", {"--no-prompt"});
    Simulator good(m_dir.path(), "sim1");
    ModemPool pool({mute.config("modem0"), good.config("modem1")}, m_queue);
    enqueue(5);

    pool.start();

    ASSERT_TRUE(all_sent());
    EXPECT_TRUE(test::wait_until([&] { return good.texts().size() >= 5; }, 5s));
    EXPECT_TRUE(mute.texts().empty());
    expect_each_once({&mute, &good});
}

// Every OK after +CMGS is lost: each SMS goes once, and each reset is counted.
TEST_F(ModemPool_Simulator, LostOksSendEachSmsOnceAndCountTheResets) {
    Simulator simulator(m_dir.path(), "sim0", {"--lost-ok-rate", "1"});
    auto config = simulator.config("modem0");
    config.send_timeout = 1s;
    ModemPool pool({config}, m_queue);
    enqueue(3);

    pool.start();

    ASSERT_TRUE(all_sent());
    ASSERT_TRUE(test::wait_until([&] { return pool.health()[0].resets == 3; }, 10s))
        << pool.health()[0].resets;
    EXPECT_TRUE(test::wait_until([&] { return simulator.texts().size() >= 3; }, 5s));
    expect_each_once({&simulator});
    EXPECT_EQ(pool.health()[0].sent, 3u);
    EXPECT_EQ(pool.health()[0].failed, 0u);
}

TEST_F(ModemPool_Simulator, SimPinAndDeliveryReports) {
    Simulator simulator(m_dir.path(), "sim0",
                        {"--sim-pin", "2468", "--sim-busy-ms", "500", "--report-delay-ms", "100"});
    auto config = simulator.config("modem0");
    config.sim_pin = "2468";
    ModemPool pool({config}, m_queue);
    enqueue(3);

    pool.start();

    ASSERT_TRUE(all_in(SmsStatus::delivered, 30s));
    expect_each_once({&simulator});
}

// The text of every outbox line, counted over all simulators.
std::map<std::string, int> outbox_counts(std::initializer_list<const Simulator*> simulators) {
    std::map<std::string, int> seen;
    for (const auto* simulator : simulators) {
        for (const auto& text : simulator->texts()) {
            ++seen[text];
        }
    }
    return seen;
}

TEST_F(ModemPool_Simulator, HundredSmsThroughThreeFaultyModemsEachFinalOnce) {
    Simulator flaky(m_dir.path(), "sim0",
                    {"--error-rate", "38=0.15", "--error-rate", "1=0.05", "--noise-ms", "50",
                     "--urc-during-send", "--seed", "7"});
    Simulator bare(m_dir.path(), "sim1",
                   {"--bare-prompt", "--error-rate", "42=0.1", "--seed", "8"});
    Simulator short_lived(m_dir.path(), "sim2", {"--hangup-after", "20"});
    std::vector<ModemConfig> configs{flaky.config("modem0"), bare.config("modem1"),
                                     short_lived.config("modem2")};
    for (auto& config : configs) {
        config.retry_delay = 50ms;
    }
    ModemPool pool(configs, m_queue);
    enqueue(100);

    pool.start();

    ASSERT_TRUE(test::wait_until(
        [&] {
            return std::all_of(m_ids.begin(), m_ids.end(), [&](const std::string& id) {
                const auto status = m_queue.find(id)->status;
                return status != SmsStatus::queued && status != SmsStatus::sending;
            });
        },
        120s, 200ms));
    pool.stop();
    const auto seen = outbox_counts({&flaky, &bare, &short_lived});
    int repeated = 0;
    for (int index = 0; index < 100; ++index) {
        const auto record = m_queue.find(m_ids[index]);
        const auto text = "Code " + std::to_string(100000 + index);
        const auto found = seen.find(text);
        const int times = found == seen.end() ? 0 : found->second;
        if (record->status == SmsStatus::failed &&
            record->failure.find("may have reached the user") != std::string::npos) {
            // Given up after hand-overs that may have sent it (a hangup).
            EXPECT_LE(times, 1) << text;
        } else if (record->status == SmsStatus::failed) {
            EXPECT_EQ(times, 0) << text << " failed but went out";
            EXPECT_NE(record->failure.find("CMS 1 "), std::string::npos) << record->failure;
        } else {
            // A hangup between the outbox line and +CMGS may send one twice.
            EXPECT_GE(times, 1) << text;
            EXPECT_LE(times, 2) << text;
            repeated += times - 1;
        }
    }
    EXPECT_LE(repeated, 1);
}

// The process that sends dies by SIGKILL while a send is in progress; a new
// one takes over the same database. Each SMS goes out once or twice, never
// not at all, and one whose +CMGS was recorded exactly once.
TEST(ModemPool_Process, KilledMidSendLosesNone) {
    test::TempDir dir;
    Simulator simulator(dir.path(), "sim0", {"--latency-ms", "300"});
    const auto database = dir.path() / "otpbox.db";
    std::vector<std::string> ids;
    {
        // Closed before the fork: SQLite connections must not cross it.
        SmsQueue queue(database, std::make_shared<PlainSealer>());
        for (int index = 0; index < 8; ++index) {
            ids.push_back("sms-" + std::to_string(index));
            queue.enqueue({ids.back(), "+491701234567", "Code " + std::to_string(100000 + index),
                           std::chrono::system_clock::now() + 600s});
        }
    }

    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        SmsQueue queue(database, std::make_shared<PlainSealer>());
        ModemPool pool({simulator.config("modem0")}, queue);
        pool.start();
        for (;;) {
            pause();
        }
    }
    const bool reached = test::wait_until([&] { return simulator.texts().size() >= 3; }, 20s);
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(reached);

    SmsQueue reopened(database, std::make_shared<PlainSealer>());
    // Those whose +CMGS was recorded before the kill must go out exactly once.
    std::vector<std::string> recorded;
    for (std::size_t index = 0; index < ids.size(); ++index) {
        const auto state = reopened.find(ids[index])->status;
        if (state == SmsStatus::sent || state == SmsStatus::delivered) {
            recorded.push_back("Code " + std::to_string(100000 + index));
        }
    }
    ASSERT_FALSE(recorded.empty());
    ModemPool pool({simulator.config("modem0")}, reopened);
    pool.start();
    ASSERT_TRUE(test::wait_until(
        [&] {
            return std::all_of(ids.begin(), ids.end(), [&](const std::string& id) {
                const auto state = reopened.find(id)->status;
                return state == SmsStatus::sent || state == SmsStatus::delivered;
            });
        },
        30s))
        << pool.health()[0].state << ": " << pool.health()[0].last_error << ", "
        << simulator.texts().size() << " in the outbox";
    pool.stop();

    const auto seen = outbox_counts({&simulator});
    EXPECT_EQ(seen.size(), ids.size());
    int repeated = 0;
    for (const auto& [text, times] : seen) {
        EXPECT_LE(times, 2) << text;
        repeated += times - 1;
    }
    EXPECT_LE(repeated, 1) << "one send was in flight";
    for (const auto& text : recorded) {
        EXPECT_EQ(seen.at(text), 1) << text << " was sent again after its +CMGS was recorded";
    }
}

}  // namespace
}  // namespace otpbox::gsm
