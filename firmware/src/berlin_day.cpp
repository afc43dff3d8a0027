#include "otpbox/firmware/berlin_day.hpp"

#include <date/date.h>
#include <date/tz.h>

namespace otpbox::firmware {

namespace {

const date::time_zone* berlin() {
    static const date::time_zone* zone = date::locate_zone("Europe/Berlin");
    return zone;
}

}  // namespace

std::string berlin_day(TimePoint when) {
    const auto local = berlin()->to_local(when);
    return date::format("%F", date::floor<date::days>(local));
}

TimePoint next_berlin_midnight(TimePoint when) {
    const auto local = berlin()->to_local(when);
    const auto next_day = date::floor<date::days>(local) + date::days(1);
    // Midnight exists on every Berlin day (the clocks change at 02:00/03:00).
    return berlin()->to_sys(next_day, date::choose::earliest);
}

}  // namespace otpbox::firmware
