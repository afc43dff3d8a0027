#include "otpbox/firmware/time_format.hpp"

#include <date/date.h>

namespace otpbox::firmware {

std::string rfc3339(TimePoint when) {
    return date::format("%FT%TZ", date::floor<std::chrono::seconds>(when));
}

}  // namespace otpbox::firmware
