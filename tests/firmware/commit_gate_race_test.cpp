// Once a request's transaction has committed, its deadline must not answer
// 503 any more (the client would retry work that is done), and before that
// a deadline that has answered keeps the transaction from committing.

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>

// The workers are internal to the firmware library; the test reaches them
// as the hsm tests reach the module wrapper.
#include "../../firmware/src/api/workers.hpp"
#include "otpbox/firmware/commit_gate.hpp"
#include "test_support.hpp"

namespace otpbox::api {
namespace {

TEST(CommitGateRace, AfterItsCommitTheWorkIsNotAbandoned) {
    Workers workers(1);
    std::promise<void> committed;
    std::promise<void> may_finish;
    auto may_finish_future = may_finish.get_future().share();
    bool answer_may_go = false;
    auto ticket = workers.submit(
        [&] {
            auto* gate = firmware::thread_commit_gate();
            ASSERT_NE(gate, nullptr);
            ASSERT_TRUE(gate->enter());  // as Database::finish before COMMIT
            gate->leave(true);           // COMMIT succeeded
            committed.set_value();
            may_finish_future.wait();  // the moment between commit and answer
            answer_may_go = Workers::finish_current();
        },
        [] {});
    committed.get_future().wait();
    const auto outcome = workers.abandon(*ticket);  // the deadline in that moment
    may_finish.set_value();
    workers.stop(std::chrono::seconds(2));
    EXPECT_NE(outcome, Workers::Abandoned::yes)
        << "the deadline answered 503 although the work's transaction had committed";
    EXPECT_TRUE(answer_may_go) << "the committed work's answer is dropped";
}

TEST(CommitGateRace, AfterItsAnswerAtTheDeadlineTheWorkDoesNotCommit) {
    Workers workers(1);
    std::promise<void> started;
    std::promise<void> may_commit;
    auto may_commit_future = may_commit.get_future().share();
    bool entered = true;
    bool answer_may_go = true;
    auto ticket = workers.submit(
        [&] {
            started.set_value();
            may_commit_future.wait();  // held up until after the deadline
            entered = firmware::thread_commit_gate()->enter();
            answer_may_go = Workers::finish_current();
        },
        [] {});
    started.get_future().wait();
    EXPECT_EQ(workers.abandon(*ticket), Workers::Abandoned::yes);
    may_commit.set_value();
    EXPECT_TRUE(
        otpbox::test::wait_until([&] { return workers.stuck() == 0; }, std::chrono::seconds(5)));
    EXPECT_FALSE(entered) << "a transaction committed after its request was answered 503";
    EXPECT_FALSE(answer_may_go);
}

}  // namespace
}  // namespace otpbox::api
