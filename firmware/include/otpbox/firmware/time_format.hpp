#pragma once

#include <string>

#include "otpbox/firmware/clock.hpp"

namespace otpbox::firmware {

// RFC 3339 in UTC with seconds: "2026-12-04T10:00:00Z".
[[nodiscard]] std::string rfc3339(TimePoint when);

}  // namespace otpbox::firmware
