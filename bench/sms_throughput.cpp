// SMS through otpbox-modemsim at a fixed send delay (its --latency-ms),
// measured in one run and printed as ratios to references from the same run:
//
// - messages a minute through the real SmsQueue (SQLite, every row sealed
//   under a SoftHSM2 data key) and ModemPool, with 1, 2 and 4 simulators
//   each on a pty of its own, against the ideal of modems x 60 / delay
//   (target: at least 0.95 at every pool size);
// - the time from the return of SmsQueue::enqueue (the row is durable: what
//   the API waits for before it answers) to the first byte of AT+CMGS at an
//   idle modem's pty, as the simulator timed its read, p50 and max of lone
//   SMS against 50 ms (target: at most 1);
// - the time per message through queue and pool against the bare AT+CMGS
//   exchange of one gsm::Modem on the same simulator, at that delay and with
//   none (where the queue's own cost shows undiluted), and for the lone SMS
//   from enqueue to their +CMGS.
//
// A pool run enqueues its burst once every modem is ready. Its rate counts
// from the moment every modem has sent its first SMS to the last +CMGS, so
// that it does not depend on when the idle workers notice the burst; the
// lone SMS show that.

#include <algorithm>
#include <array>
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
constexpr std::array<std::size_t, 3> kPoolSizes{1, 2, 4};
constexpr std::size_t kMessagesPerModem = 30;
constexpr double kThroughputTarget = 0.95;
constexpr std::size_t kUndelayedMessages = 100;
constexpr std::size_t kUndelayedRuns = 3;
constexpr std::size_t kLoneMessages = 16;
// The nth lone SMS is enqueued kLoneSettle + n x kLoneSpacing after the one
// before it was sent: after the worker has finished with that one, and
// together at every point of its first second of idleness, longer than its
// idle cycle (a listen for reports, then a wait for work).
constexpr auto kLoneSettle = 30ms;
constexpr auto kLoneSpacing = 60ms;
constexpr double kFirstByteTargetMs = 50.0;
constexpr const char* kRecipient = "+491701234567";

[[noreturn]] void fail(const std::string& why) {
    std::fprintf(stderr, "bench: %s\n", why.c_str());
    std::exit(1);
}

[[nodiscard]] double to_ms(Clock::duration duration) {
    return 1000.0 * Seconds(duration).count();
}

struct Timed {
    std::size_t messages = 0;
    Seconds took{0};

    [[nodiscard]] double per_minute() const { return 60.0 * messages / took.count(); }
    [[nodiscard]] double ms_per_message() const { return 1000.0 * took.count() / messages; }
};

// Milliseconds, one a lone SMS.
struct Samples {
    std::vector<double> ms;

    [[nodiscard]] double mean() const {
        double sum = 0;
        for (const double value : ms) {
            sum += value;
        }
        return sum / static_cast<double>(ms.size());
    }
    [[nodiscard]] double median() const {
        auto sorted = ms;
        std::sort(sorted.begin(), sorted.end());
        const auto middle = sorted.size() / 2;
        return sorted.size() % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }
    [[nodiscard]] double max() const { return *std::max_element(ms.begin(), ms.end()); }
};

struct LoneSms {
    Samples first_byte;  // enqueue's return to the first byte of AT+CMGS
    Samples sent;        // enqueue's call to the worker's count of its +CMGS
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

[[nodiscard]] std::size_t sent_so_far(gsm::ModemPool& pool) {
    std::size_t sent = 0;
    for (const auto& modem : pool.health()) {
        if (modem.failed > 0) {
            fail(modem.name + " failed an SMS: " + modem.last_error);
        }
        sent += modem.sent;
    }
    return sent;
}

// When the pool had sent one SMS a modem, and all of them.
struct SendTimes {
    Clock::time_point first_round;
    Clock::time_point last;
};

// Watches the workers' counters (a millisecond apart) rather than the
// database, so that the watching takes no lock the workers need.
SendTimes watch_sends(gsm::ModemPool& pool, std::size_t modems, std::size_t messages,
                      Seconds limit) {
    const auto deadline = Clock::now() + limit;
    SendTimes times;
    for (std::size_t seen = 0; seen < messages;) {
        const auto sent = sent_so_far(pool);
        const auto now = Clock::now();
        if (seen < modems && sent >= modems) {
            times.first_round = now;
        }
        seen = sent;
        if (now >= deadline) {
            fail("the pool sent " + std::to_string(sent) + " of " + std::to_string(messages));
        }
        std::this_thread::sleep_for(1ms);
    }
    times.last = Clock::now();
    return times;
}

void require_all_sent(gsm::SmsQueue& queue, const std::vector<std::string>& ids) {
    for (const auto& id : ids) {
        const auto status = queue.find(id)->status;
        if (status != gsm::SmsStatus::sent && status != gsm::SmsStatus::delivered) {
            fail(id + " is " + std::string(gsm::status_name(status)) + ", not sent");
        }
    }
}

std::vector<gsm::ModemConfig> configs_of(const std::vector<const ModemSimulator*>& simulators) {
    std::vector<gsm::ModemConfig> configs;
    for (std::size_t index = 0; index < simulators.size(); ++index) {
        configs.push_back(simulators[index]->modem_config("modem" + std::to_string(index)));
    }
    return configs;
}

gsm::OutgoingSms sms_of(std::size_t index) {
    return {"sms-" + std::to_string(index), kRecipient, text_of(index),
            std::chrono::system_clock::now() + 600s};
}

// Steady throughput: after every modem's first +CMGS until the last.
Timed through_pool(const std::vector<const ModemSimulator*>& simulators,
                   std::shared_ptr<gsm::Sealer> sealer, const fs::path& database,
                   std::size_t messages) {
    gsm::SmsQueue queue(database, std::move(sealer));
    gsm::ModemPool pool(configs_of(simulators), queue);
    pool.start();
    wait_until_ready(pool);

    std::vector<std::string> ids;
    for (std::size_t index = 0; index < messages; ++index) {
        const auto sms = sms_of(index);
        queue.enqueue(sms);
        ids.push_back(sms.id);
    }
    // Three times the ideal, and time to spare for a slow start.
    const auto modems = simulators.size();
    const auto ideal = Seconds(simulators.front()->send_delay()) *
                       (static_cast<double>(messages) / static_cast<double>(modems));
    const auto times = watch_sends(pool, modems, messages, Seconds(30) + 3 * ideal);

    pool.stop();
    require_all_sent(queue, ids);
    return {messages - modems, times.last - times.first_round};
}

// The simulator's record of the AT+CMGS that came after the first `before`.
Clock::time_point cmgs_arrival(const ModemSimulator& simulator, std::size_t before) {
    const auto arrivals = simulator.cmgs_arrivals();
    if (arrivals.size() != before + 1) {
        fail("the simulator recorded " + std::to_string(arrivals.size() - before) +
             " AT+CMGS for one lone SMS");
    }
    return arrivals.back();
}

// One SMS at a time on one modem whose worker is idle when it comes.
LoneSms lone_sms(const ModemSimulator& simulator, std::shared_ptr<gsm::Sealer> sealer,
                 const fs::path& database) {
    gsm::SmsQueue queue(database, std::move(sealer));
    gsm::ModemPool pool(configs_of({&simulator}), queue);
    pool.start();
    wait_until_ready(pool);

    LoneSms lone;
    std::vector<std::string> ids;
    for (std::size_t index = 0; index < kLoneMessages; ++index) {
        std::this_thread::sleep_for(kLoneSettle + kLoneSpacing * index);
        const auto sms = sms_of(index);
        const auto before = simulator.cmgs_arrivals().size();
        const auto start = Clock::now();
        queue.enqueue(sms);
        const auto enqueued = Clock::now();
        ids.push_back(sms.id);
        const auto sent = watch_sends(pool, 1, index + 1, Seconds(30)).last;
        lone.first_byte.ms.push_back(to_ms(cmgs_arrival(simulator, before) - enqueued));
        lone.sent.ms.push_back(to_ms(sent - start));
    }
    pool.stop();
    require_all_sent(queue, ids);
    return lone;
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

struct PerMessage {
    std::size_t messages = 0;
    double pool_ms = 0;
    double bare_ms = 0;
    [[nodiscard]] double ratio() const { return pool_ms / bare_ms; }
};

// Queue and pool against the bare exchange with no send delay, where the
// database's commits weigh most: alternating runs and the median ratio,
// since on a disk shared with other work single runs scatter widely.
PerMessage undelayed_per_message(const ModemSimulator& simulator,
                                 const std::shared_ptr<gsm::Sealer>& sealer, const fs::path& dir) {
    std::vector<PerMessage> runs;
    for (std::size_t run = 0; run < kUndelayedRuns; ++run) {
        const auto bare = through_bare_modem(simulator, kUndelayedMessages);
        const auto pool =
            through_pool({&simulator}, sealer, dir / ("undelayed-" + std::to_string(run) + ".db"),
                         kUndelayedMessages);
        runs.push_back({pool.messages, pool.ms_per_message(), bare.ms_per_message()});
    }
    std::sort(runs.begin(), runs.end(),
              [](const PerMessage& a, const PerMessage& b) { return a.ratio() < b.ratio(); });
    return runs[runs.size() / 2];
}

struct Results {
    Timed bare;
    std::vector<Timed> pools;  // one a size in kPoolSizes
    LoneSms lone;
    PerMessage undelayed;
};

[[nodiscard]] const char* verdict(bool met) {
    return met ? "met" : "MISSED";
}

void print_throughput(const std::string& what, std::size_t modems, const Timed& run,
                      bool has_target) {
    const double ideal = modems * 60.0 / Seconds(kSendDelay).count();
    const double ratio = run.per_minute() / ideal;
    std::printf("%-36s %8zu %10.0f %12.1f %8.2f", what.c_str(), run.messages, ideal,
                run.per_minute(), ratio);
    if (has_target) {
        std::printf("  (target >= %.2f: %s)", kThroughputTarget,
                    verdict(ratio >= kThroughputTarget));
    }
    std::printf("\n");
}

void print_first_byte(const char* what, double ms) {
    const double ratio = ms / kFirstByteTargetMs;
    std::printf("%-36s %8zu %10.1f %12.1f %8.2f  (target <= 1: %s)\n", what, kLoneMessages,
                kFirstByteTargetMs, ms, ratio, verdict(ratio <= 1.0));
}

void print_per_message(const std::string& what, const PerMessage& run) {
    std::printf("%-36s %8zu %10.1f %12.1f %8.2f\n", what.c_str(), run.messages, run.pool_ms,
                run.bare_ms, run.ratio());
}

void print(const Results& results) {
    const auto delay = "send delay " + std::to_string(kSendDelay.count()) + " ms";
    std::printf("%-36s %8s %10s %12s %8s\n", ("SMS a minute, " + delay).c_str(), "messages",
                "ideal", "achieved", "ratio");
    for (std::size_t index = 0; index < kPoolSizes.size(); ++index) {
        const auto modems = kPoolSizes[index];
        const auto what =
            std::to_string(modems) + (modems == 1 ? " modem" : " modems") + ", queue and pool";
        print_throughput(what, modems, results.pools[index], true);
    }
    print_throughput("1 modem, bare AT+CMGS", 1, results.bare, false);

    std::printf("\n%-36s %8s %10s %12s %8s\n", "Enqueued to first byte of AT+CMGS", "messages",
                "target ms", "measured ms", "ratio");
    print_first_byte("lone SMS, idle modem, p50", results.lone.first_byte.median());
    print_first_byte("lone SMS, idle modem, max", results.lone.first_byte.max());

    const double bare_ms = results.bare.ms_per_message();
    const auto& one = results.pools.front();
    std::printf("\n%-36s %8s %10s %12s %8s\n", "Per message, 1 modem", "messages", "pool ms",
                "bare AT ms", "ratio");
    print_per_message(delay, {one.messages, one.ms_per_message(), bare_ms});
    print_per_message("no send delay, median of " + std::to_string(kUndelayedRuns),
                      results.undelayed);
    print_per_message("lone SMS to +CMGS, mean",
                      {kLoneMessages, results.lone.sent.mean(), bare_ms});
    print_per_message("lone SMS to +CMGS, worst",
                      {kLoneMessages, results.lone.sent.max(), bare_ms});
}

}  // namespace

int main() {
    BenchToken token;
    const auto largest = *std::max_element(kPoolSizes.begin(), kPoolSizes.end());
    std::vector<std::unique_ptr<ModemSimulator>> delayed;
    for (std::size_t index = 0; index < largest; ++index) {
        delayed.push_back(std::make_unique<ModemSimulator>(
            token.dir(), "sim" + std::to_string(index), kSendDelay));
    }
    const ModemSimulator undelayed(token.dir(), "sim-undelayed", 0ms);

    auto hsm = otpbox::hsm::Hsm::open(token.hsm_config());
    hsm->generate_secret_key(otpbox::hsm::keys::versioned(otpbox::hsm::keys::kDataEnc, 1),
                             otpbox::hsm::KeyKind::aes_256);
    otpbox::firmware::Secrets secrets(hsm);
    const auto sealer = secrets.sms_sealer();

    Results results;
    results.bare = through_bare_modem(*delayed[0], kMessagesPerModem);
    for (const auto modems : kPoolSizes) {
        std::vector<const ModemSimulator*> simulators;
        for (std::size_t index = 0; index < modems; ++index) {
            simulators.push_back(delayed[index].get());
        }
        results.pools.push_back(through_pool(
            simulators, sealer, token.dir() / ("pool-" + std::to_string(modems) + ".db"),
            modems * kMessagesPerModem));
    }
    results.lone = lone_sms(*delayed[0], sealer, token.dir() / "lone.db");
    results.undelayed = undelayed_per_message(undelayed, sealer, token.dir());
    print(results);
    return 0;
}
