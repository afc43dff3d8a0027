#include "otpbox/provisioning/dev_instance.hpp"

#include "otpbox/firmware/config.hpp"
#include "otpbox/hsm/hsm.hpp"
#include "otpbox/provisioning/keys.hpp"
#include "otpbox/provisioning/pki.hpp"
#include "otpbox/provisioning/token.hpp"

namespace otpbox::provisioning {

namespace {

namespace fs = std::filesystem;

void report_all(std::string_view step, const StepReport& report, const StepObserver& observer) {
    for (const auto& line : report) {
        observer(step, line.item, line.result);
    }
}

hsm::ModuleSpec dev_module(const fs::path& dir, const DevConfigOptions& options) {
    return {options.module_path, {{"SOFTHSM2_CONF", (dir / "hsm" / "softhsm2.conf").string()}}};
}

// The PINs live only in this scope and in the files; they wipe themselves.
StepResult init_dev_token(const fs::path& dir, const DevConfigOptions& options) {
    const hsm::SecureBytes so_pin(read_secret_file(dir / "hsm" / "so.pin"));
    const hsm::SecureBytes user_pin(read_secret_file(dir / "hsm" / "user.pin"));
    return provisioning::init_token(dev_module(dir, options), options.token_label, so_pin.view(),
                                    user_pin.view());
}

}  // namespace

void provision_dev(const fs::path& given_dir, const DevConfigOptions& options,
                   const StepObserver& observer) {
    const auto dir = fs::absolute(given_dir).lexically_normal();

    report_all("hsm-files", write_dev_hsm_files(dir), observer);
    report_all("pki", make_dev_pki(dir / "pki"), observer);
    observer("config", "otpbox.toml", write_dev_config(dir, options));
    observer("token", options.token_label, init_dev_token(dir, options));

    // The keys are made with the HSM settings the daemon itself will read.
    const auto config = firmware::load_config(dir / "otpbox.toml");
    report_all("keys", create_keys(config.hsm), observer);
}

}  // namespace otpbox::provisioning
