#pragma once

// Timed rounds of an operation on worker threads, and the comparison of an
// operation with its reference measured in the same run.
//
// A work type offers prepare(thread) -> State, called on each thread before
// the round starts (sessions, key lookups), and run(State&) for one
// operation; run is called from several threads at once.

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace otpbox::bench {

using Clock = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;

inline constexpr auto kRound = std::chrono::milliseconds(250);
inline constexpr unsigned kCycles = 9;

struct Tally {
    long operations = 0;
    Seconds took{0};

    Tally& operator+=(const Tally& other) {
        operations += other.operations;
        took += other.took;
        return *this;
    }
    [[nodiscard]] double per_second() const {
        return static_cast<double>(operations) / took.count();
    }
};

template <class Work>
Tally run_round(unsigned threads, Work& work) {
    std::atomic<unsigned> prepared{0};
    std::atomic<bool> go{false};
    std::atomic<bool> stop{false};
    std::atomic<long> operations{0};
    std::vector<Clock::time_point> finished(threads);
    std::vector<std::thread> workers;
    for (unsigned thread = 0; thread < threads; ++thread) {
        workers.emplace_back([&, thread] {
            auto state = work.prepare(thread);
            ++prepared;
            while (!go.load()) {
                std::this_thread::yield();
            }
            long done = 0;
            while (!stop.load(std::memory_order_relaxed)) {
                work.run(state);
                ++done;
            }
            // The operation under way when the round ended counts, so its
            // end does too.
            finished[thread] = Clock::now();
            operations += done;
        });
    }
    while (prepared.load() < threads) {
        std::this_thread::yield();
    }
    const auto start = Clock::now();
    go = true;
    std::this_thread::sleep_for(kRound);
    stop = true;
    for (auto& worker : workers) {
        worker.join();
    }
    return {operations.load(), *std::max_element(finished.begin(), finished.end()) - start};
}

// Rates of several works measured in the same run, and their ratios.
template <std::size_t N>
class Measurement {
  public:
    using Cycle = std::array<double, N>;  // operations per second of each work

    void add(const Cycle& cycle) { m_cycles.push_back(cycle); }

    // The median over the cycles of work's rate.
    [[nodiscard]] double rate(std::size_t work) const {
        return median([&](const Cycle& cycle) { return cycle[work]; });
    }

    // The median over the cycles of work's rate divided by reference's in
    // the same cycle: both met the same load, so their ratio scatters far
    // less than either rate.
    [[nodiscard]] double ratio(std::size_t work, std::size_t reference) const {
        return median([&](const Cycle& cycle) { return cycle[work] / cycle[reference]; });
    }

  private:
    template <class Value>
    [[nodiscard]] double median(Value value) const {
        std::vector<double> values;
        for (const auto& cycle : m_cycles) {
            values.push_back(value(cycle));
        }
        std::sort(values.begin(), values.end());
        return values[values.size() / 2];
    }

    std::vector<Cycle> m_cycles;
};

// A work and the number of threads its rounds run on.
template <class Work>
struct OnThreads {
    unsigned threads;
    Work& work;
};

// Measures the works in kCycles cycles. A cycle runs a round of each work
// in the order given and then in reverse (A B B A), so that load that
// drifts within it (a build running beside) weighs on every work alike;
// the cycles' medians then drop the cycles that a burst of load disturbed.
template <class... Works>
Measurement<sizeof...(Works)> measure_each(OnThreads<Works>... works) {
    constexpr std::size_t kWorks = sizeof...(Works);
    std::array<std::function<Tally()>, kWorks> rounds{
        [works] { return run_round(works.threads, works.work); }...};
    Measurement<kWorks> measurement;
    for (unsigned cycle = 0; cycle < kCycles; ++cycle) {
        std::array<Tally, kWorks> tallies{};
        for (std::size_t work = 0; work < kWorks; ++work) {
            tallies[work] += rounds[work]();
        }
        for (std::size_t work = kWorks; work-- > 0;) {
            tallies[work] += rounds[work]();
        }
        typename Measurement<kWorks>::Cycle rates{};
        for (std::size_t work = 0; work < kWorks; ++work) {
            rates[work] = tallies[work].per_second();
        }
        measurement.add(rates);
    }
    return measurement;
}

// The same, every work on the same number of threads.
template <class... Works>
Measurement<sizeof...(Works)> measure(unsigned threads, Works&... works) {
    return measure_each(OnThreads<Works>{threads, works}...);
}

// The first failure any thread of a round met. A work must not throw from
// a round's threads (that would end the program with the servers it started
// still running), so it records the failure and the run stops after the
// round.
class Failures {
  public:
    void record(const std::exception& error) {
        const std::lock_guard lock(m_mutex);
        if (m_first.empty()) {
            m_first = error.what();
        }
    }
    void throw_if_any() {
        const std::lock_guard lock(m_mutex);
        if (!m_first.empty()) {
            throw std::runtime_error(m_first);
        }
    }

  private:
    std::mutex m_mutex;
    std::string m_first;
};

}  // namespace otpbox::bench
