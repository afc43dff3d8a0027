#pragma once

// The calendar day in Europe/Berlin (daylight saving included), whatever the
// process's own time zone: day mode ends at local midnight there.

#include <string>

#include "otpbox/firmware/clock.hpp"

namespace otpbox::firmware {

// "2026-12-04" for any instant of that local day in Berlin.
[[nodiscard]] std::string berlin_day(TimePoint when);

// The first instant of the next local day in Berlin.
[[nodiscard]] TimePoint next_berlin_midnight(TimePoint when);

}  // namespace otpbox::firmware
