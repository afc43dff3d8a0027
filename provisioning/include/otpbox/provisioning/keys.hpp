#pragma once

// The appliance's secret keys, made inside the token.

#include <string>
#include <vector>

#include "otpbox/hsm/hsm.hpp"
#include "otpbox/provisioning/step.hpp"

namespace otpbox::provisioning {

struct KeySpec {
    std::string label;  // with its version suffix
    hsm::KeyKind kind = hsm::KeyKind::hmac_sha256;
};

// The secret keys of key_labels.hpp, version 1 (the TLS key is made apart).
[[nodiscard]] std::vector<KeySpec> appliance_keys();

// Creates every missing key of appliance_keys(); an existing key is never
// made again. Throws hsm::HsmError on failure.
[[nodiscard]] StepReport create_keys(const hsm::HsmConfig& config);

// The same with an open HSM.
[[nodiscard]] StepReport create_keys(hsm::Hsm& hsm);

}  // namespace otpbox::provisioning
