#include "otpbox/firmware/berlin_day.hpp"

#include <gtest/gtest.h>

#include <date/date.h>

#include <cstdlib>
#include <ctime>

namespace otpbox::firmware {
namespace {

using namespace std::chrono_literals;

TimePoint utc(int year, unsigned month, unsigned day, int hours, int minutes, int seconds) {
    return date::sys_days(date::year(year) / month / day) + std::chrono::hours(hours) +
           std::chrono::minutes(minutes) + std::chrono::seconds(seconds);
}

class BerlinDay : public ::testing::Test {
  protected:
    // The rule must not depend on the process's own time zone.
    void SetUp() override {
        ::setenv("TZ", "UTC", 1);
        ::tzset();
    }
};

TEST_F(BerlinDay, WinterMidnightIsElevenPmUtc) {
    EXPECT_EQ(berlin_day(utc(2026, 12, 4, 22, 59, 59)), "2026-12-04");
    EXPECT_EQ(berlin_day(utc(2026, 12, 4, 23, 0, 0)), "2026-12-05");
}

TEST_F(BerlinDay, SummerMidnightIsTenPmUtc) {
    EXPECT_EQ(berlin_day(utc(2026, 7, 1, 21, 59, 59)), "2026-07-01");
    EXPECT_EQ(berlin_day(utc(2026, 7, 1, 22, 0, 0)), "2026-07-02");
}

TEST_F(BerlinDay, SpringForwardDayHasTwentyThreeHours) {
    const auto start = utc(2026, 3, 28, 23, 0, 0);  // 2026-03-29 00:00 CET
    EXPECT_EQ(berlin_day(start), "2026-03-29");
    EXPECT_EQ(berlin_day(start - 1s), "2026-03-28");
    const auto next = next_berlin_midnight(start);
    EXPECT_EQ(next - start, 23h);
    EXPECT_EQ(berlin_day(next - 1s), "2026-03-29");
    EXPECT_EQ(berlin_day(next), "2026-03-30");
}

TEST_F(BerlinDay, FallBackDayHasTwentyFiveHours) {
    const auto start = utc(2026, 10, 24, 22, 0, 0);  // 2026-10-25 00:00 CEST
    EXPECT_EQ(berlin_day(start), "2026-10-25");
    const auto next = next_berlin_midnight(start + 12h);
    EXPECT_EQ(next - start, 25h);
    EXPECT_EQ(berlin_day(next - 1s), "2026-10-25");
    EXPECT_EQ(berlin_day(next), "2026-10-26");
}

TEST_F(BerlinDay, NextMidnightFromLastSecondIsOneSecondAway) {
    const auto last = utc(2026, 12, 4, 22, 59, 59);
    EXPECT_EQ(next_berlin_midnight(last) - last, 1s);
}

}  // namespace
}  // namespace otpbox::firmware
