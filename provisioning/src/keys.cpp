#include "otpbox/provisioning/keys.hpp"

#include "otpbox/hsm/key_labels.hpp"

namespace otpbox::provisioning {

namespace {

constexpr unsigned kKeyVersion = 1;

}  // namespace

std::vector<KeySpec> appliance_keys() {
    using hsm::KeyKind;
    namespace keys = hsm::keys;
    return {
        {keys::versioned(keys::kCardKdk, kKeyVersion), KeyKind::hmac_sha256},
        {keys::versioned(keys::kOtpMac, kKeyVersion), KeyKind::hmac_sha256},
        {keys::versioned(keys::kDataEnc, kKeyVersion), KeyKind::aes_256},
        {keys::versioned(keys::kDataIndex, kKeyVersion), KeyKind::hmac_sha256},
        {keys::versioned(keys::kAuditMac, kKeyVersion), KeyKind::hmac_sha256},
    };
}

StepReport create_keys(hsm::Hsm& hsm) {
    StepReport report;
    for (const auto& key : appliance_keys()) {
        if (hsm.has_key(key.label)) {
            report.push_back({key.label, StepResult::present});
            continue;
        }
        hsm.generate_secret_key(key.label, key.kind);
        report.push_back({key.label, StepResult::created});
    }
    return report;
}

StepReport create_keys(const hsm::HsmConfig& config) {
    const auto hsm = hsm::Hsm::open(config);
    return create_keys(*hsm);
}

}  // namespace otpbox::provisioning
