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
#include <functional>
#include <thread>
#include <vector>

namespace otpbox::bench {

using Clock = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;

inline constexpr auto kRound = std::chrono::seconds(1);

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

// Operations per second of each work, with a round of each in the order
// given and then in reverse (A B B A): a drift in the machine's load (a
// build running beside) then weighs on all of them alike.
template <class... Works>
std::array<double, sizeof...(Works)> rates(unsigned threads, Works&... works) {
    std::array<std::function<Tally()>, sizeof...(Works)> rounds{
        [&] { return run_round(threads, works); }...};
    std::array<Tally, sizeof...(Works)> tallies{};
    for (std::size_t index = 0; index < rounds.size(); ++index) {
        tallies[index] += rounds[index]();
    }
    for (std::size_t index = rounds.size(); index-- > 0;) {
        tallies[index] += rounds[index]();
    }
    std::array<double, sizeof...(Works)> result{};
    for (std::size_t index = 0; index < tallies.size(); ++index) {
        result[index] = tallies[index].per_second();
    }
    return result;
}

}  // namespace otpbox::bench
