#include "otpbox/provisioning/dev_instance.hpp"

#include <sys/stat.h>

#include "console/password.hpp"
#include "file_io.hpp"

#include "otpbox/firmware/config.hpp"
#include "otpbox/hsm/hsm.hpp"
#include "otpbox/provisioning/keys.hpp"
#include "otpbox/provisioning/pki.hpp"
#include "otpbox/provisioning/tls_identity.hpp"
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
// A token that exists keeps its PINs: after a factory-fresh start the
// technician chose them at the console, and no file of ours knows them.
StepResult init_dev_token(const fs::path& dir, const DevConfigOptions& options,
                          const StepObserver& observer) {
    const auto module = dev_module(dir, options);
    if (hsm::token_exists(module, options.token_label)) {
        return StepResult::present;
    }
    report_all("hsm-files", write_dev_pin_files(dir), observer);
    const hsm::SecureBytes so_pin(read_secret_file(dir / "hsm" / "so.pin"));
    const hsm::SecureBytes user_pin(read_secret_file(dir / "hsm" / "user.pin"));
    return provisioning::init_token(module, options.token_label, so_pin.view(), user_pin.view());
}

// console.pass holds the development password in the clear (only here: an
// appliance keeps just the hash); console.passwd its Argon2id hash. A hash
// that exists is kept: it may be a password a technician set.
StepResult write_dev_console_password(const fs::path& dir) {
    const auto clear = dir / "console.pass";
    const auto hashed = dir / "console.passwd";
    if (fs::exists(hashed)) {
        return StepResult::present;
    }
    const hsm::SecureBytes password(random_dev_password());
    detail::write_file_atomically(clear, std::string(password.view()) + "\n", S_IRUSR | S_IWUSR);
    console::set_password(hashed, password.view());
    return StepResult::created;
}

}  // namespace

void provision_dev(const fs::path& given_dir, const DevConfigOptions& options,
                   const StepObserver& observer) {
    const auto dir = fs::absolute(given_dir).lexically_normal();

    report_all("hsm-files", write_dev_hsm_files(dir, false), observer);
    observer("config", "otpbox.toml", write_dev_config(dir, options));
    // The configuration decides: a server key in a file (an instance made
    // before the key moved into the HSM) gets its file pair from the PKI.
    const auto config = firmware::load_config(dir / "otpbox.toml");
    const bool key_in_file = config.api.key_label.empty();
    report_all(
        "pki",
        make_dev_pki(dir / "pki", key_in_file ? DevPkiParts::all : DevPkiParts::clients_only),
        observer);
    if (options.factory) {
        // What the technician's console fills in.
        detail::make_directory(dir / "trust", S_IRWXU | S_IRGRP | S_IXGRP | S_IROTH | S_IXOTH);
        return;
    }
    observer("console", "console.passwd", write_dev_console_password(dir));
    observer("token", options.token_label, init_dev_token(dir, options, observer));

    // The keys are made with the HSM settings the daemon itself will read.
    const auto hsm = hsm::Hsm::open(config.hsm);
    report_all("keys", create_keys(*hsm), observer);
    if (!key_in_file) {
        report_all("tls",
                   make_dev_tls_identity(hsm, config.api.key_label, config.api.certificate_file,
                                         dir / "pki"),
                   observer);
    }
}

}  // namespace otpbox::provisioning
