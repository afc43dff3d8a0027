#pragma once

// Every step of the development instance, in order, creating only what is missing.

#include <filesystem>
#include <functional>
#include <string_view>

#include "otpbox/provisioning/dev_files.hpp"
#include "otpbox/provisioning/step.hpp"

namespace otpbox::provisioning {

// Called once per item as soon as its step is done: step name, item, result.
using StepObserver =
    std::function<void(std::string_view step, std::string_view item, StepResult result)>;

// HSM files, PKI, configuration, token and keys under dir. Throws on the
// first failing step.
void provision_dev(const std::filesystem::path& dir, const DevConfigOptions& options,
                   const StepObserver& observer);

}  // namespace otpbox::provisioning
