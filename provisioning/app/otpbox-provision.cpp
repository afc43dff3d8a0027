// otpbox-provision: the provisioning steps without a person, for the
// development instance (scripts/dev-up) and for scripted installs.

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "otpbox/firmware/config.hpp"
#include "otpbox/hsm/secure_bytes.hpp"
#include "otpbox/provisioning/dev_instance.hpp"
#include "otpbox/provisioning/keys.hpp"
#include "otpbox/provisioning/pki.hpp"
#include "otpbox/provisioning/token.hpp"

namespace {

namespace fs = std::filesystem;
namespace prov = otpbox::provisioning;

void print_line(std::string_view step, std::string_view item, prov::StepResult result) {
    std::cout << step << ": " << item << " " << prov::step_result_name(result) << "\n";
}

void print_report(std::string_view step, const prov::StepReport& report) {
    for (const auto& line : report) {
        print_line(step, line.item, line.result);
    }
}

struct InitTokenOptions {
    std::string module{prov::kSoftHsmModule};
    std::string softhsm_conf;
    std::string label{prov::kDevTokenLabel};
    fs::path so_pin_file;
    fs::path user_pin_file;
};

void run_init_token(const InitTokenOptions& options) {
    otpbox::hsm::ModuleSpec module{options.module, {}};
    if (!options.softhsm_conf.empty()) {
        module.environment["SOFTHSM2_CONF"] = fs::absolute(options.softhsm_conf).string();
    }
    const otpbox::hsm::SecureBytes so_pin(prov::read_secret_file(options.so_pin_file));
    const otpbox::hsm::SecureBytes user_pin(prov::read_secret_file(options.user_pin_file));
    print_line("token", options.label,
               prov::init_token(module, options.label, so_pin.view(), user_pin.view()));
}

std::string read_text(const fs::path& file) {
    std::ostringstream text;
    if (file == "-") {
        text << std::cin.rdbuf();
    } else {
        std::ifstream in(file);
        if (!in) {
            throw std::runtime_error("cannot read " + file.string());
        }
        text << in.rdbuf();
    }
    return text.str();
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"otpbox-provision: creates what an otpbox instance is missing, nothing else"};
    app.require_subcommand(1);

    fs::path dev_dir = ".dev";
    prov::DevConfigOptions dev_options;
    auto* dev = app.add_subcommand("dev", "every step for the development instance");
    dev->add_option("--dir", dev_dir, "the instance's folder")->capture_default_str();
    dev->add_option("--port", dev_options.port, "the API's port in a new configuration")
        ->capture_default_str();
    dev->add_flag("--factory", dev_options.factory,
                  "a factory-fresh instance: only the development CA and client certificates");

    InitTokenOptions token_options;
    auto* init = app.add_subcommand("init-token", "initialise the HSM token unless it exists");
    init->add_option("--module", token_options.module, "PKCS#11 module")->capture_default_str();
    init->add_option("--softhsm-conf", token_options.softhsm_conf, "SOFTHSM2_CONF for the module");
    init->add_option("--label", token_options.label, "token label")->capture_default_str();
    init->add_option("--so-pin-file", token_options.so_pin_file, "file with the SO PIN")
        ->required();
    init->add_option("--user-pin-file", token_options.user_pin_file, "file with the user PIN")
        ->required();

    fs::path config_file;
    auto* keys = app.add_subcommand("create-keys", "create the appliance's missing keys");
    keys->add_option("--config", config_file, "otpbox.toml")->required();

    fs::path pki_dir;
    auto* pki = app.add_subcommand("dev-pki", "create the missing files of the development PKI");
    pki->add_option("--dir", pki_dir, "the PKI's folder")->required();

    fs::path sign_pki_dir;
    fs::path csr_file;
    auto* sign = app.add_subcommand(
        "sign-csr", "the development CA signs a server certificate for a CSR (to stdout)");
    sign->add_option("--pki", sign_pki_dir, "the development PKI's folder")->required();
    sign->add_option("--csr", csr_file, "the PEM request, - for standard input")->required();

    CLI11_PARSE(app, argc, argv);

    try {
        if (dev->parsed()) {
            prov::provision_dev(dev_dir, dev_options, print_line);
        } else if (init->parsed()) {
            run_init_token(token_options);
        } else if (keys->parsed()) {
            print_report("keys", prov::create_keys(otpbox::firmware::load_config(config_file).hsm));
        } else if (pki->parsed()) {
            print_report("pki", prov::make_dev_pki(pki_dir));
        } else if (sign->parsed()) {
            std::cout << prov::sign_with_dev_ca(sign_pki_dir, read_text(csr_file));
        }
    } catch (const std::exception& error) {
        std::cout.flush();
        std::cerr << "otpbox-provision: " << error.what() << "\n";
        return 1;
    }
    // Everything is written and synced by now. SoftHSM2 2.6 can crash in its
    // exit-time destructors under load (after our C_Finalize), which would
    // turn a finished run into a failed one: skip them.
    std::cout.flush();
    std::_Exit(0);
}
