#pragma once

// The appliance's keys, found by label with a version suffix ("-v1").

#include <string>
#include <string_view>

namespace otpbox::hsm::keys {

inline constexpr std::string_view kCardKdk = "otpbox-card-kdk";
inline constexpr std::string_view kOtpMac = "otpbox-otp-mac";
inline constexpr std::string_view kDataEnc = "otpbox-data-enc";
inline constexpr std::string_view kDataIndex = "otpbox-data-index";
inline constexpr std::string_view kAuditMac = "otpbox-audit-mac";
inline constexpr std::string_view kTls = "otpbox-tls";

// "otpbox-card-kdk" and 1 give "otpbox-card-kdk-v1".
[[nodiscard]] inline std::string versioned(std::string_view base, unsigned version) {
    return std::string(base) + "-v" + std::to_string(version);
}

}  // namespace otpbox::hsm::keys
