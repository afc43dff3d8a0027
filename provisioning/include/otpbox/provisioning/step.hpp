#pragma once

// What a provisioning step did: each step creates only what is missing.

#include <string>
#include <string_view>
#include <vector>

namespace otpbox::provisioning {

enum class StepResult { created, present };

[[nodiscard]] constexpr std::string_view step_result_name(StepResult result) noexcept {
    return result == StepResult::created ? "created" : "present";
}

// One line of a step's report: what ("server.crt", "otpbox-otp-mac-v1") and the result.
struct StepLine {
    std::string item;
    StepResult result = StepResult::present;
};

using StepReport = std::vector<StepLine>;

}  // namespace otpbox::provisioning
