#pragma once

namespace otpbox::firmware {

inline constexpr const char* kVersion = "0.1.0";

}  // namespace otpbox::firmware
