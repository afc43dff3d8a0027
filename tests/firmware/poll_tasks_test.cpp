// The daemon's poll tasks (firmware/src/poll_tasks.hpp): a task begins each
// HSM call through its Task, none once the stop was asked for, and the stop
// waits for a task one call deadline from the later of the stop and the call
// it began last. The calls here are sleeps and waits of a known length.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../../firmware/src/poll_tasks.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using otpbox::firmware::detail::PollTasks;
using Clock = std::chrono::steady_clock;

// The HSM's call deadline as the waits are given it, and a call well within
// it, with room for a busy machine's late wake-ups.
constexpr auto kDeadline = 500ms;
constexpr auto kTimelyCall = 200ms;

// What a task did, shared with its thread, which may outlive the test.
struct Seen {
    std::atomic<int> calls_begun{0};
    std::atomic<int> calls_done{0};
    std::atomic<bool> released{false};
};

// Work that makes up to count calls in turn, each taking kTimelyCall.
PollTasks::Work timely_calls(std::shared_ptr<Seen> seen, int count) {
    return [seen, count](const PollTasks::Task& task) {
        for (int call = 0; call < count && task.begin_call(); ++call) {
            ++seen->calls_begun;
            std::this_thread::sleep_for(kTimelyCall);
            ++seen->calls_done;
        }
    };
}

// Work whose one call lasts until the test releases it: a stalled token.
PollTasks::Work stalled_call(std::shared_ptr<Seen> seen) {
    return [seen](const PollTasks::Task& task) {
        if (!task.begin_call()) {
            return;
        }
        ++seen->calls_begun;
        while (!seen->released) {
            std::this_thread::sleep_for(5ms);
        }
        ++seen->calls_done;
    };
}

bool began_a_call(const Seen& seen) {
    return otpbox::test::wait_until([&] { return seen.calls_begun > 0; }, 5s, 1ms);
}

// Several calls in turn, each in time, take longer than one deadline in
// all: the task's deadline runs from the call it began last, so it is not
// named, and the wait lasts until it has made them all.
TEST(PollTasks, Wait_ATaskWhoseCallsAreEachInTimeIsNotNamedHoweverManyItMakes) {
    PollTasks tasks;
    auto seen = std::make_shared<Seen>();
    ASSERT_TRUE(tasks.start("sim_pins", timely_calls(seen, 4)));

    const auto started = Clock::now();
    EXPECT_EQ(tasks.wait(kDeadline), std::vector<std::string>{});
    EXPECT_EQ(seen->calls_done, 4);
    EXPECT_GE(Clock::now() - started, 3 * kTimelyCall);
    EXPECT_FALSE(tasks.running("sim_pins"));
}

// After the stop a task begins no further call: it ends with the call it was
// in, within one deadline of the stop, however many it would have made.
TEST(PollTasks, Stop_ATaskBeginsNoFurtherCallAndEndsWithinOneDeadline) {
    PollTasks tasks;
    auto seen = std::make_shared<Seen>();
    ASSERT_TRUE(tasks.start("sim_pins", timely_calls(seen, 10)));
    ASSERT_TRUE(began_a_call(*seen));

    const auto stopped = Clock::now();
    tasks.stop();
    EXPECT_EQ(tasks.wait(kDeadline), std::vector<std::string>{});
    EXPECT_LT(Clock::now() - stopped, kDeadline);
    // The call it was in (two, should the machine be slow to stop it).
    EXPECT_LE(seen->calls_begun, 2);
    EXPECT_EQ(seen->calls_done, seen->calls_begun);
    EXPECT_FALSE(tasks.running("sim_pins"));
}

// A task still inside its call one deadline after the stop is named; one
// whose call ends in time beside it is not, and the wait ends at the
// deadline, not when the stalled call returns.
TEST(PollTasks, Wait_NamesOnlyTheTaskStillInItsCallOneDeadlineAfterTheStop) {
    PollTasks tasks;
    auto stalled = std::make_shared<Seen>();
    auto timely = std::make_shared<Seen>();
    ASSERT_TRUE(tasks.start("tls_reload", stalled_call(stalled)));
    ASSERT_TRUE(tasks.start("key_version_lookup", timely_calls(timely, 5)));
    ASSERT_TRUE(began_a_call(*stalled));
    ASSERT_TRUE(began_a_call(*timely));

    const auto stopped = Clock::now();
    tasks.stop();
    const auto named = tasks.wait(kDeadline);
    const auto took = Clock::now() - stopped;
    stalled->released = true;

    EXPECT_EQ(named, std::vector<std::string>{"tls_reload"});
    EXPECT_GE(took, kDeadline);
    EXPECT_LT(took, 3 * kDeadline);
    EXPECT_LE(timely->calls_done, 2);
    EXPECT_FALSE(tasks.running("key_version_lookup"));

    // Released, the stalled task ends, and a later wait finds nothing left.
    EXPECT_EQ(tasks.wait(5s), std::vector<std::string>{});
    EXPECT_EQ(stalled->calls_done, 1);
}

// The stop's wait counts from the stop, not from the wait's own start: a
// wait that begins late (the server and the modems were stopped first) does
// not give a stalled task another whole deadline.
TEST(PollTasks, Wait_BegunLateAfterTheStopEndsOneDeadlineAfterTheStop) {
    PollTasks tasks;
    auto stalled = std::make_shared<Seen>();
    ASSERT_TRUE(tasks.start("hsm_probe", stalled_call(stalled)));
    ASSERT_TRUE(began_a_call(*stalled));

    tasks.stop();
    std::this_thread::sleep_for(kDeadline);
    const auto started = Clock::now();
    EXPECT_EQ(tasks.wait(kDeadline), std::vector<std::string>{"hsm_probe"});
    EXPECT_LT(Clock::now() - started, kDeadline / 2);
    stalled->released = true;
    EXPECT_EQ(tasks.wait(5s), std::vector<std::string>{});
}

// At most one task of a name runs at a time; once it ended, the name is free.
TEST(PollTasks, Start_RefusesASecondTaskOfTheSameNameWhileTheFirstRuns) {
    PollTasks tasks;
    auto first = std::make_shared<Seen>();
    auto second = std::make_shared<Seen>();
    ASSERT_TRUE(tasks.start("sim_pins", stalled_call(first)));
    EXPECT_TRUE(tasks.running("sim_pins"));
    EXPECT_FALSE(tasks.start("sim_pins", stalled_call(second)));

    first->released = true;
    EXPECT_EQ(tasks.wait(5s), std::vector<std::string>{});
    EXPECT_FALSE(tasks.running("sim_pins"));
    second->released = true;
    EXPECT_TRUE(tasks.start("sim_pins", stalled_call(second)));
    EXPECT_EQ(tasks.wait(5s), std::vector<std::string>{});
    EXPECT_EQ(second->calls_done, 1);
    EXPECT_EQ(first->calls_done, 1);
}

}  // namespace
