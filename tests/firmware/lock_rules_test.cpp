// Locks: 10 wrong answers in a row lock the second factor for 15 minutes,
// doubling up to 24 hours until a success; the first wrong answer after a
// lock counts as 1.

#include <gtest/gtest.h>

#include "service_fixture.hpp"

namespace otpbox::firmware {
namespace {

using namespace std::chrono_literals;
using testing::kActor;
using testing::refusal_of;
using testing::ServiceFixture;

// Answers wrong count times, logging in again whenever a challenge burns.
// Returns the reason of the last refusal.
Reason answer_wrong(ServiceFixture& f, int count) {
    Reason last = Reason::rejected;
    std::string challenge = f.challenges->login("alice", kActor).id;
    int on_this_challenge = 0;
    for (int i = 0; i < count; ++i) {
        if (on_this_challenge == 5) {
            challenge = f.challenges->login("alice", kActor).id;
            on_this_challenge = 0;
        }
        last = *refusal_of([&] { f.challenges->verify(challenge, "999999", kActor); });
        ++on_this_challenge;
    }
    return last;
}

std::chrono::seconds retry_after_of_login(ServiceFixture& f) {
    try {
        (void)f.challenges->login("alice", kActor);
    } catch (const Refused& refused) {
        EXPECT_EQ(refused.reason(), Reason::locked);
        return refused.retry_after.value_or(0s);
    }
    ADD_FAILURE() << "login was not refused";
    return 0s;
}

TEST(Lock_WrongAnswers, TenthInARowLocksForFifteenMinutes) {
    ServiceFixture f;
    const auto card = f.cards->issue("alice", kActor);
    EXPECT_EQ(answer_wrong(f, 9), Reason::rejected);
    EXPECT_EQ(answer_wrong(f, 1), Reason::locked);
    EXPECT_EQ(retry_after_of_login(f), 900s);
    EXPECT_EQ(refusal_of([&] { (void)f.challenges->request_otp("alice", kActor); }),
              Reason::locked);
}

// The portal can tell the user how long to wait without reading headers.
TEST(Lock_WrongAnswers, TheRefusalSaysHowLongTheLockLasts) {
    ServiceFixture f;
    const auto card = f.cards->issue("alice", kActor);
    EXPECT_EQ(answer_wrong(f, 10), Reason::locked);
    const auto message_of_login = [&] {
        try {
            (void)f.challenges->login("alice", kActor);
        } catch (const Refused& refused) {
            return std::string(refused.what());
        }
        return std::string("not refused");
    };
    EXPECT_NE(message_of_login().find("locked for 15 more minutes"), std::string::npos)
        << message_of_login();
    f.clock.advance(14min);
    EXPECT_NE(message_of_login().find("locked for 1 more minute;"), std::string::npos)
        << message_of_login();
    f.clock.advance(30s);
    EXPECT_NE(message_of_login().find("locked for less than a minute"), std::string::npos)
        << message_of_login();
}

// A clock set back after the lock began leaves more than the lock's length
// until its end: the refusal names at most the length of this lock.
TEST(Lock_WrongAnswers, AClockSetBackNeverMakesTheLockSoundLongerThanItsLength) {
    ServiceFixture f;
    const auto card = f.cards->issue("alice", kActor);
    const auto challenge = f.challenges->login("alice", kActor);
    EXPECT_EQ(answer_wrong(f, 10), Reason::locked);
    f.clock.advance(-2h);
    try {
        (void)f.challenges->login("alice", kActor);
        ADD_FAILURE() << "login was not refused";
    } catch (const Refused& refused) {
        EXPECT_EQ(refused.reason(), Reason::locked);
        EXPECT_EQ(refused.retry_after.value_or(0s), 900s);
        EXPECT_NE(std::string(refused.what()).find("locked for 15 more minutes;"),
                  std::string::npos)
            << refused.what();
    }
    try {
        f.challenges->verify(challenge.id, ServiceFixture::answer(card, challenge), kActor);
        ADD_FAILURE() << "the answer was not refused";
    } catch (const Refused& refused) {
        EXPECT_EQ(refused.reason(), Reason::locked);
        EXPECT_EQ(refused.retry_after.value_or(0s), 900s);
    }

    // The second lock lasts 30 minutes: that is its cap.
    f.clock.advance(2h + 15min);
    EXPECT_EQ(answer_wrong(f, 10), Reason::locked);
    f.clock.advance(-2h);
    EXPECT_EQ(retry_after_of_login(f), 1800s);
    f.clock.advance(2h + 20min);
    EXPECT_EQ(retry_after_of_login(f), 600s);
}

TEST(Lock_WrongAnswers, RightCodeWhileLockedIsRefused) {
    ServiceFixture f;
    const auto card = f.cards->issue("alice", kActor);
    const auto challenge = f.challenges->login("alice", kActor);
    // Lock through other challenges; this one stays open.
    EXPECT_EQ(answer_wrong(f, 10), Reason::locked);
    EXPECT_EQ(refusal_of([&] {
                  f.challenges->verify(challenge.id, ServiceFixture::answer(card, challenge),
                                       kActor);
              }),
              Reason::locked);
}

// Refused for the lock, the answer costs the HSM nothing.
TEST(Lock_WrongAnswers, AnAnswerWhileLockedIsNotWorkedOutInTheHsm) {
    ServiceFixture f;
    const auto card = f.cards->issue("alice", kActor);
    const auto challenge = f.challenges->login("alice", kActor);
    EXPECT_EQ(answer_wrong(f, 10), Reason::locked);
    const auto watched = f.send_right_answer_watching_the_card_key(card, challenge);
    EXPECT_EQ(watched.refusal, Reason::locked);
    EXPECT_FALSE(watched.card_cell_worked_out);
}

TEST(Lock_WrongAnswers, EachFurtherLockDoublesUpToADay) {
    ServiceFixture f;
    (void)f.cards->issue("alice", kActor);
    const std::chrono::seconds expected[] = {900s,   1800s,  3600s,  7200s, 14400s,
                                             28800s, 57600s, 86400s, 86400s};
    for (const auto duration : expected) {
        EXPECT_EQ(answer_wrong(f, 10), Reason::locked);
        EXPECT_EQ(retry_after_of_login(f), duration);
        f.clock.advance(duration);
    }
}

TEST(Lock_WrongAnswers, SuccessResetsCountAndDoubling) {
    ServiceFixture f;
    const auto card = f.cards->issue("alice", kActor);
    EXPECT_EQ(answer_wrong(f, 10), Reason::locked);
    f.clock.advance(900s);
    EXPECT_EQ(answer_wrong(f, 9), Reason::rejected);
    const auto challenge = f.challenges->login("alice", kActor);
    f.challenges->verify(challenge.id, ServiceFixture::answer(card, challenge), kActor);
    // Nine more do not lock (the count started again), the tenth locks for
    // 15 minutes again (the doubling started again).
    EXPECT_EQ(answer_wrong(f, 9), Reason::rejected);
    EXPECT_EQ(answer_wrong(f, 1), Reason::locked);
    EXPECT_EQ(retry_after_of_login(f), 900s);
}

TEST(Lock_WrongAnswers, AfterALockEndsTheFirstWrongAnswerCountsAsOne) {
    ServiceFixture f;
    (void)f.cards->issue("alice", kActor);
    EXPECT_EQ(answer_wrong(f, 10), Reason::locked);
    f.clock.advance(900s);
    EXPECT_EQ(answer_wrong(f, 9), Reason::rejected);
    EXPECT_EQ(answer_wrong(f, 1), Reason::locked);
    EXPECT_EQ(retry_after_of_login(f), 1800s);
}

}  // namespace
}  // namespace otpbox::firmware
