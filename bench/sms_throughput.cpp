// SMS throughput through otpbox-modemsim at its configured send delay,
// measured in one run and printed as ratios:
//
// - messages a minute through the real SmsQueue (SQLite, every row sealed
//   under a SoftHSM2 data key) and ModemPool, with 1 and 3 simulators each
//   on a pty of its own, against the ideal of modems x 60 / delay;
// - the time per message through queue and pool against the bare AT+CMGS
//   exchange of one gsm::Modem on the same simulator, at that delay and with
//   none (where the queue's own cost shows undiluted).
//
// A pool run starts once every modem is ready and is timed from the first
// enqueue until the pool has recorded the last +CMGS.

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_token.hpp"
#include "modem_simulator.hpp"
#include "otpbox/firmware/config.hpp"
#include "otpbox/firmware/secrets.hpp"
#include "otpbox/gsm/modem_pool.hpp"
#include "otpbox/gsm/sms_queue.hpp"
#include "otpbox/hsm/key_labels.hpp"
#include "rounds.hpp"

namespace {

namespace fs = std::filesystem;
namespace gsm = otpbox::gsm;
using namespace otpbox::bench;
using namespace std::chrono_literals;

constexpr auto kSendDelay = 250ms;
constexpr std::size_t kMessagesPerModem = 40;
constexpr std::size_t kUndelayedMessages = 100;
constexpr const char* kRecipient = "+491701234567";

[[noreturn]] void fail(const std::string& why) {
    std::fprintf(stderr, "bench: %s\n", why.c_str());
    std::exit(1);
}

struct Timed {
    std::size_t messages = 0;
    Seconds took{0};

    [[nodiscard]] double per_minute() const { return 60.0 * messages / took.count(); }
    [[nodiscard]] double ms_per_message() const { return 1000.0 * took.count() / messages; }
};

// The daemon's default OTP text, one part.
std::string text_of(std::size_t index) {
    auto text = otpbox::firmware::SmsConfig{}.template_text;
    text.replace(text.find("{code}"), 6, std::to_string(100000 + index));
    return text;
}

// What the pool's workers ask of the network for every SMS.
gsm::SubmitOptions submit_options() {
    gsm::SubmitOptions options;
    options.validity = 10min;
    options.status_report = true;
    return options;
}

void wait_until_ready(gsm::ModemPool& pool) {
    const auto deadline = Clock::now() + 30s;
    for (;;) {
        const auto health = pool.health();
        bool ready = true;
        for (const auto& modem : health) {
            ready = ready && modem.state == "ready";
        }
        if (ready) {
            return;
        }
        if (Clock::now() >= deadline) {
            fail("modem " + health.front().name + " not ready: " + health.front().last_error);
        }
        std::this_thread::sleep_for(10ms);
    }
}

// Watches the workers' counters rather than the database, so that the
// watching takes no lock the workers need.
void wait_until_sent(gsm::ModemPool& pool, std::size_t messages, Seconds limit) {
    const auto deadline = Clock::now() + limit;
    for (;;) {
        std::size_t sent = 0;
        for (const auto& modem : pool.health()) {
            if (modem.failed > 0) {
                fail(modem.name + " failed an SMS: " + modem.last_error);
            }
            sent += modem.sent;
        }
        if (sent >= messages) {
            return;
        }
        if (Clock::now() >= deadline) {
            fail("the pool sent " + std::to_string(sent) + " of " + std::to_string(messages));
        }
        std::this_thread::sleep_for(1ms);
    }
}

void require_all_sent(gsm::SmsQueue& queue, const std::vector<std::string>& ids) {
    for (const auto& id : ids) {
        const auto status = queue.find(id)->status;
        if (status != gsm::SmsStatus::sent && status != gsm::SmsStatus::delivered) {
            fail(id + " is " + std::string(gsm::status_name(status)) + ", not sent");
        }
    }
}

Timed through_pool(const std::vector<const ModemSimulator*>& simulators,
                   std::shared_ptr<gsm::Sealer> sealer, const fs::path& database,
                   std::size_t messages) {
    gsm::SmsQueue queue(database, std::move(sealer));
    std::vector<gsm::ModemConfig> configs;
    for (std::size_t index = 0; index < simulators.size(); ++index) {
        configs.push_back(simulators[index]->modem_config("modem" + std::to_string(index)));
    }
    gsm::ModemPool pool(configs, queue);
    pool.start();
    wait_until_ready(pool);

    std::vector<std::string> ids;
    const auto start = Clock::now();
    for (std::size_t index = 0; index < messages; ++index) {
        ids.push_back("sms-" + std::to_string(index));
        queue.enqueue(
            {ids.back(), kRecipient, text_of(index), std::chrono::system_clock::now() + 600s});
    }
    // Three times the ideal, and time to spare for a slow start.
    const auto ideal = Seconds(simulators.front()->send_delay()) *
                       (static_cast<double>(messages) / static_cast<double>(simulators.size()));
    wait_until_sent(pool, messages, Seconds(30) + 3 * ideal);
    const Seconds took = Clock::now() - start;

    pool.stop();
    require_all_sent(queue, ids);
    return {messages, took};
}

Timed through_bare_modem(const ModemSimulator& simulator, std::size_t messages) {
    gsm::Modem modem(simulator.modem_config("bare"));
    modem.open();
    const auto options = submit_options();
    const auto start = Clock::now();
    for (std::size_t index = 0; index < messages; ++index) {
        modem.send(kRecipient, text_of(index), options,
                   [](std::size_t, std::size_t, std::uint8_t) {});
    }
    const Seconds took = Clock::now() - start;
    modem.close();
    return {messages, took};
}

void print_throughput(const char* what, std::size_t modems, const Timed& run) {
    const double ideal = modems * 60.0 / std::chrono::duration<double>(kSendDelay).count();
    std::printf("%-32s %8zu %11.0f %12.1f %8.2f\n", what, run.messages, ideal, run.per_minute(),
                run.per_minute() / ideal);
}

void print_overhead(const std::string& what, const Timed& pool, const Timed& bare) {
    std::printf("%-32s %8zu %11.1f %12.1f %8.2f\n", what.c_str(), pool.messages,
                pool.ms_per_message(), bare.ms_per_message(),
                pool.ms_per_message() / bare.ms_per_message());
}

}  // namespace

int main() {
    BenchToken token;
    std::vector<std::unique_ptr<ModemSimulator>> delayed;
    for (int index = 0; index < 3; ++index) {
        delayed.push_back(std::make_unique<ModemSimulator>(
            token.dir(), "sim" + std::to_string(index), kSendDelay));
    }
    const ModemSimulator undelayed(token.dir(), "sim-undelayed", 0ms);

    auto hsm = otpbox::hsm::Hsm::open(token.hsm_config());
    hsm->generate_secret_key(otpbox::hsm::keys::versioned(otpbox::hsm::keys::kDataEnc, 1),
                             otpbox::hsm::KeyKind::aes_256);
    otpbox::firmware::Secrets secrets(hsm);
    const auto sealer = secrets.sms_sealer();

    const auto bare = through_bare_modem(*delayed[0], kMessagesPerModem);
    const auto one =
        through_pool({delayed[0].get()}, sealer, token.dir() / "one.db", kMessagesPerModem);
    const auto three = through_pool({delayed[0].get(), delayed[1].get(), delayed[2].get()}, sealer,
                                    token.dir() / "three.db", 3 * kMessagesPerModem);
    const auto bare_undelayed = through_bare_modem(undelayed, kUndelayedMessages);
    const auto one_undelayed =
        through_pool({&undelayed}, sealer, token.dir() / "undelayed.db", kUndelayedMessages);

    const auto delay = "send delay " + std::to_string(kSendDelay.count()) + " ms";
    std::printf("%-32s %8s %11s %12s %8s\n", ("SMS, " + delay).c_str(), "messages", "ideal/min",
                "achieved/min", "ratio");
    print_throughput("1 modem, queue and pool", 1, one);
    print_throughput("3 modems, queue and pool", 3, three);
    print_throughput("1 modem, bare AT+CMGS", 1, bare);
    std::printf("\n%-32s %8s %11s %12s %8s\n", "Per message, 1 modem", "messages", "pool ms",
                "bare AT ms", "ratio");
    print_overhead(delay, one, bare);
    print_overhead("no send delay", one_undelayed, bare_undelayed);
    return 0;
}
