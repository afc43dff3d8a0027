#pragma once

// The appliance's idea of now. Rules with time limits take a Clock so that
// tests can stand at 23:59:59 in Berlin or 601 s after an OTP was sent.

#include <atomic>
#include <chrono>
#include <cstdint>

namespace otpbox::firmware {

using TimePoint = std::chrono::system_clock::time_point;

class Clock {
  public:
    virtual ~Clock() = default;
    [[nodiscard]] virtual TimePoint now() const = 0;
};

class SystemClock final : public Clock {
  public:
    [[nodiscard]] TimePoint now() const override { return std::chrono::system_clock::now(); }
};

// A clock that stands still until moved; for tests.
class ManualClock final : public Clock {
  public:
    explicit ManualClock(TimePoint start) : m_now(start.time_since_epoch().count()) {}
    [[nodiscard]] TimePoint now() const override {
        return TimePoint(TimePoint::duration(m_now.load()));
    }
    void set(TimePoint when) { m_now = when.time_since_epoch().count(); }
    void advance(std::chrono::milliseconds step) {
        m_now += std::chrono::duration_cast<TimePoint::duration>(step).count();
    }

  private:
    std::atomic<TimePoint::rep> m_now;
};

[[nodiscard]] inline std::int64_t to_millis(TimePoint when) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch()).count();
}

[[nodiscard]] inline TimePoint from_millis(std::int64_t millis) {
    return TimePoint(std::chrono::milliseconds(millis));
}

// True when the kernel says the system clock is synchronised (NTP): the
// rules' time limits are only as good as the clock.
[[nodiscard]] bool clock_synchronized();

}  // namespace otpbox::firmware
