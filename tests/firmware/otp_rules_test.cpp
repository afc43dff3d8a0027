// SMS OTP rules: only to the registered number, 600 s, single use, day mode
// until Berlin midnight, and the per-user SMS limits.

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "service_fixture.hpp"

namespace otpbox::firmware {
namespace {

using namespace std::chrono_literals;
using testing::kActor;
using testing::refusal_of;
using testing::ServiceFixture;
using testing::utc;

constexpr const char* kNumber = "+491701234567";

TEST(Phone_Register, NormalisesMasksAndRefusesGarbage) {
    ServiceFixture f;
    EXPECT_EQ(f.phones->register_number("alice", "0170 1234567", kActor), "+49 170 ****567");
    EXPECT_EQ(f.phones->masked("alice"), "+49 170 ****567");
    EXPECT_EQ(refusal_of([&] { (void)f.phones->register_number("alice", "abc", kActor); }),
              Reason::invalid_number);
    EXPECT_EQ(refusal_of([&] { (void)f.phones->register_number("alice", "+49", kActor); }),
              Reason::invalid_number);
    EXPECT_EQ(
        refusal_of([&] { (void)f.phones->register_number("alice", std::string(40, '1'), kActor); }),
        Reason::invalid_number);
    EXPECT_EQ(refusal_of([&] { (void)f.phones->register_number("alice", "+33612345678", kActor); }),
              Reason::country_not_allowed);
    // Refusals changed nothing.
    EXPECT_EQ(f.phones->masked("alice"), "+49 170 ****567");
    f.phones->erase("alice", kActor);
    EXPECT_EQ(refusal_of([&] { (void)f.phones->masked("alice"); }), Reason::no_phone);
}

// The API answered these with 500: the number ends inside its country code.
TEST(Phone_Register, ANumberShorterThanItsCountryCodeIsInvalid) {
    ServiceFixture f;
    (void)f.phones->register_number("alice", "0170 1234567", kActor);
    for (const char* number : {"+4", "+42", "0042"}) {
        EXPECT_EQ(refusal_of([&] { (void)f.phones->register_number("alice", number, kActor); }),
                  Reason::invalid_number)
            << number;
    }
    EXPECT_EQ(f.phones->masked("alice"), "+49 170 ****567");
}

TEST(Phone_Register, NumberIsNotStoredInClear) {
    ServiceFixture f;
    (void)f.phones->register_number("alice", "0170 1234567", kActor);
    const auto bytes = otpbox::test::read_file(f.config.database);
    EXPECT_EQ(bytes.find("1701234567"), std::string::npos);
}

TEST(Otp_Request, WithoutPhoneNamesTheFallbacks) {
    ServiceFixture f;
    try {
        (void)f.challenges->request_otp("alice", kActor);
        FAIL();
    } catch (const Refused& refused) {
        EXPECT_EQ(refused.reason(), Reason::no_phone_to_send);
        EXPECT_EQ(refused.fallbacks, (std::vector<std::string>{"ti_connector", "order_pincard"}));
    }
}

class OtpWithModem : public ::testing::Test {
  protected:
    OtpWithModem() : f(utc(2026, 12, 4, 9, 0, 0), true) {
        (void)f.phones->register_number("alice", "0170 1234567", kActor);
    }
    ServiceFixture f;
};

TEST_F(OtpWithModem, CodeArrivesAndIsUsableOnce) {
    const auto challenge = f.challenges->request_otp("alice", kActor);
    EXPECT_EQ(challenge.method, "sms");
    EXPECT_EQ(challenge.masked, "+49 170 ****567");
    EXPECT_EQ(challenge.expires_at, f.clock.now() + 600s);
    const auto code = f.sms_code(kNumber, 1);
    ASSERT_TRUE(code);
    ASSERT_EQ(code->size(), 6u);

    f.challenges->verify(challenge.id, *code, kActor);
    EXPECT_EQ(refusal_of([&] { f.challenges->verify(challenge.id, *code, kActor); }), Reason::gone);
}

TEST_F(OtpWithModem, ValidForSixHundredSeconds) {
    const auto in_time = f.challenges->request_otp("alice", kActor);
    const auto in_time_code = f.sms_code(kNumber, 1);
    ASSERT_TRUE(in_time_code);
    f.clock.advance(599s);
    f.challenges->verify(in_time.id, *in_time_code, kActor);

    const auto late = f.challenges->request_otp("alice", kActor);
    const auto late_code = f.sms_code(kNumber, 2);
    ASSERT_TRUE(late_code);
    f.clock.advance(601s);
    EXPECT_EQ(refusal_of([&] { f.challenges->verify(late.id, *late_code, kActor); }), Reason::gone);
}

// A user has one OTP at a time: the newer one makes the older unusable,
// with a reason that says so, and an older SMS still queued is not sent.
TEST_F(OtpWithModem, ANewerOtpSupersedesTheOlderOne) {
    const auto older = f.challenges->request_otp("alice", kActor);
    const auto older_code = f.sms_code(kNumber, 1);
    const auto newer = f.challenges->request_otp("alice", kActor);
    const auto newer_code = f.sms_code(kNumber, 2);
    ASSERT_TRUE(older_code && newer_code);

    try {
        f.challenges->verify(older.id, *older_code, kActor);
        FAIL() << "the older OTP was accepted";
    } catch (const Refused& refused) {
        EXPECT_EQ(refused.reason(), Reason::gone);
        EXPECT_NE(std::string(refused.what()).find("newer OTP"), std::string::npos)
            << refused.what();
    }
    f.challenges->verify(newer.id, *newer_code, kActor);
}

TEST(Otp_Supersede, AnOlderSmsStillQueuedIsNotSent) {
    ServiceFixture f;  // no modem: every SMS stays queued
    (void)f.phones->register_number("alice", "0170 1234567", kActor);
    const auto older = f.challenges->request_otp("alice", kActor);
    ASSERT_EQ(f.queue->find(older.sms_id)->status, gsm::SmsStatus::queued);

    const auto newer = f.challenges->request_otp("alice", kActor);

    const auto cancelled = f.queue->find(older.sms_id);
    EXPECT_EQ(cancelled->status, gsm::SmsStatus::failed);
    EXPECT_EQ(cancelled->failure, "superseded by a newer OTP for the same user");
    EXPECT_EQ(f.queue->find(newer.sms_id)->status, gsm::SmsStatus::queued);
    EXPECT_EQ(f.queue->stats().depth, 1u);
}

TEST_F(OtpWithModem, TwoSimultaneousVerifiesAcceptOnce) {
    for (int round = 0; round < 5; ++round) {
        const auto challenge = f.challenges->request_otp("alice", kActor);
        const auto code = f.sms_code(kNumber, static_cast<std::size_t>(round + 1));
        ASSERT_TRUE(code);
        std::atomic<int> accepted{0};
        std::vector<std::thread> threads;
        for (int i = 0; i < 2; ++i) {
            threads.emplace_back([&] {
                if (!refusal_of([&] { f.challenges->verify(challenge.id, *code, kActor); })) {
                    ++accepted;
                }
            });
        }
        for (auto& thread : threads) {
            thread.join();
        }
        EXPECT_EQ(accepted.load(), 1);
        f.clock.advance(1h);  // stay under the hourly SMS limit
    }
}

TEST_F(OtpWithModem, DayModeSendsSmsUntilBerlinMidnight) {
    (void)f.cards->issue("alice", kActor);
    EXPECT_EQ(f.challenges->login("alice", kActor).method, "pincard");

    f.clock.set(utc(2026, 12, 4, 22, 0, 0));  // 23:00 in Berlin
    (void)f.challenges->request_otp("alice", kActor);
    f.clock.set(utc(2026, 12, 4, 22, 59, 59));  // 23:59:59
    const auto login = f.challenges->login("alice", kActor);
    EXPECT_EQ(login.method, "sms");
    EXPECT_EQ(login.masked, "+49 170 ****567");
    f.clock.set(utc(2026, 12, 4, 23, 0, 0));  // 00:00:00 the next day
    EXPECT_EQ(f.challenges->login("alice", kActor).method, "pincard");
}

TEST_F(OtpWithModem, FivePerHourThenRetryAfter) {
    for (int i = 0; i < 5; ++i) {
        (void)f.challenges->request_otp("alice", kActor);
        f.clock.advance(1min);
    }
    try {
        (void)f.challenges->request_otp("alice", kActor);
        FAIL();
    } catch (const Refused& refused) {
        EXPECT_EQ(refused.reason(), Reason::sms_limit);
        EXPECT_EQ(refused.retry_after, 55min);
    }
    // Day-mode logins count against the same limit.
    (void)f.cards->issue("alice", kActor);
    EXPECT_EQ(refusal_of([&] { (void)f.challenges->login("alice", kActor); }), Reason::sms_limit);
    f.clock.advance(55min);
    EXPECT_EQ(f.challenges->login("alice", kActor).method, "sms");
}

TEST_F(OtpWithModem, TwentyPerDay) {
    for (int i = 0; i < 20; ++i) {
        (void)f.challenges->request_otp("alice", kActor);
        f.clock.advance(13min);
    }
    EXPECT_EQ(refusal_of([&] { (void)f.challenges->request_otp("alice", kActor); }),
              Reason::sms_limit);
}

}  // namespace
}  // namespace otpbox::firmware
