#include "otpbox/provisioning/dev_files.hpp"

#include <openssl/rand.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "file_io.hpp"
#include "otpbox/hsm/secure_bytes.hpp"
#include "otpbox/provisioning/pki.hpp"

namespace otpbox::provisioning {

namespace {

namespace fs = std::filesystem;

constexpr std::size_t kPinDigits = 8;
constexpr mode_t kPrivateFile = S_IRUSR | S_IWUSR;
constexpr mode_t kPrivateDir = S_IRWXU;

constexpr std::size_t kPasswordLength = 16;

// Rejection sampling keeps every character equally likely: for digits,
// bytes of 250 and above would favour 0-5.
std::string random_text(std::string_view alphabet, std::size_t count) {
    const auto limit = 256 - 256 % alphabet.size();
    std::string text;
    while (text.size() < count) {
        unsigned char byte = 0;
        if (RAND_bytes(&byte, 1) != 1) {
            throw std::runtime_error("the random generator failed");
        }
        if (byte < limit) {
            text.push_back(alphabet[byte % alphabet.size()]);
        }
    }
    return text;
}

std::string random_digits(std::size_t count) {
    return random_text("0123456789", count);
}

StepLine write_pin_file(const fs::path& path) {
    if (fs::exists(path)) {
        return {path.filename().string(), StepResult::present};
    }
    const hsm::SecureBytes pin(random_digits(kPinDigits) + "\n");
    detail::write_file_atomically(path, pin.view(), kPrivateFile);
    return {path.filename().string(), StepResult::created};
}

StepLine write_softhsm_conf(const fs::path& hsm_dir) {
    const auto path = hsm_dir / "softhsm2.conf";
    if (fs::exists(path)) {
        return {path.filename().string(), StepResult::present};
    }
    const auto tokens = fs::absolute(hsm_dir / "tokens").lexically_normal();
    detail::make_directory(tokens, kPrivateDir);
    std::ostringstream text;
    text << "# SoftHSM2 for the otpbox development instance (otpbox-provision dev).\n"
         << "directories.tokendir = " << tokens.string() << "\n"
         << "objectstore.backend = file\n"
         << "log.level = ERROR\n"
         << "slots.removable = false\n";
    detail::write_file_atomically(path, text.str(), S_IRUSR | S_IWUSR | S_IRGRP | S_IROTH);
    return {path.filename().string(), StepResult::created};
}

// The development instance: the PKI's CA, the server key in the HSM with a
// certificate from the development CA, both clients allowed here; the
// console's allowances go to clients.toml.
std::string dev_api_text(const DevConfigOptions& options) {
    std::ostringstream text;
    text << "[api]\n"
         << "listen = \"127.0.0.1\"\n"
         << "port = " << options.port << "\n"
         << "ca = \"pki/ca.pem\"\n"
         << "certificate = \"pki/server.crt\"\n"
         << "key_label = \"otpbox-tls-v1\"   # the server key, in the HSM\n"
         << "clients_file = \"clients.toml\"\n"
         << "threads = 4\n\n"
         << "[[api.clients]]\n"
         << "subject = \"" << kPortalSubject << "\"\n"
         << "role = \"portal\"\n\n"
         << "[[api.clients]]\n"
         << "subject = \"" << kMonitorSubject << "\"\n"
         << "role = \"monitor\"\n\n";
    return text.str();
}

// A factory-fresh appliance: every TLS part is the console's to put in
// trust/, the key is made in the HSM by 'tls csr'.
std::string factory_api_text(const DevConfigOptions& options) {
    std::ostringstream text;
    text << "[api]\n"
         << "listen = \"127.0.0.1\"\n"
         << "port = " << options.port << "\n"
         << "ca = \"trust/portal-ca.pem\"\n"
         << "certificate = \"trust/server.crt\"\n"
         << "key_label = \"otpbox-tls-v1\"\n"
         << "clients_file = \"trust/clients.toml\"\n"
         << "threads = 4\n\n";
    return text.str();
}

std::string config_text(const DevConfigOptions& options) {
    std::ostringstream text;
    text << "# The otpbox development instance, written by otpbox-provision dev.\n"
         << "# Relative paths are relative to this file's folder.\n\n"
         << (options.factory ? factory_api_text(options) : dev_api_text(options)) << "[console]\n"
         << "password_file = \"console.passwd\"\n"
         << "idle_seconds = 300\n\n"
         << "[hsm]\n"
         << "module = \"" << options.module_path << "\"\n"
         << "token = \"" << options.token_label << "\"\n"
         << "pin_file = \"hsm/user.pin\"\n\n"
         << "[hsm.environment]\n"
         << "SOFTHSM2_CONF = \"hsm/softhsm2.conf\"\n\n"
         << "[database]\n"
         << "path = \"otpbox.db\"\n\n"
         << "[sms]\n"
         << "allowed_countries = [\"+49\"]\n"
         << "otp_digits = 6\n"
         << "otp_validity_seconds = 600\n"
         << "template = \"Ihr Anmeldecode: {code}. Er gilt 10 Minuten. "
            "Geben Sie ihn nicht weiter.\"\n\n"
         << "[[modems]]\n"
         << "name = \"modem0\"\n"
         << "device = \"modem/modem0\"\n"
         << "baud = 115200\n\n"
         << "[pincard]\n"
         << "columns = 8\n"
         << "rows = 8\n"
         << "cell_length = 2\n"
         << "alphabet = \"0123456789\"\n"
         << "challenge_cells = 3\n"
         << "challenge_seconds = 300\n\n"
         << "[log]\n"
         << "level = \"info\"\n";
    return text.str();
}

}  // namespace

StepReport write_dev_hsm_files(const fs::path& dir, bool with_pins) {
    const auto hsm_dir = dir / "hsm";
    detail::make_directory(hsm_dir, kPrivateDir);
    StepReport report;
    if (with_pins) {
        report = write_dev_pin_files(dir);
    }
    report.push_back(write_softhsm_conf(hsm_dir));
    return report;
}

StepReport write_dev_pin_files(const fs::path& dir) {
    const auto hsm_dir = dir / "hsm";
    detail::make_directory(hsm_dir, kPrivateDir);
    return {write_pin_file(hsm_dir / "so.pin"), write_pin_file(hsm_dir / "user.pin")};
}

StepResult write_dev_config(const fs::path& dir, const DevConfigOptions& options) {
    const auto path = dir / "otpbox.toml";
    if (fs::exists(path)) {
        return StepResult::present;
    }
    fs::create_directories(dir);
    detail::write_file_atomically(path, config_text(options),
                                  S_IRUSR | S_IWUSR | S_IRGRP | S_IROTH);
    return StepResult::created;
}

std::string random_dev_password() {
    // No 0/o, 1/l: read off a screen and typed into a terminal.
    return random_text("abcdefghijkmnpqrstuvwxyz23456789", kPasswordLength);
}

std::string read_secret_file(const fs::path& path) {
    std::ifstream file(path);
    std::string line;
    if (!file || !std::getline(file, line) || line.empty()) {
        throw std::runtime_error("cannot read a secret from " + path.string());
    }
    return line;
}

}  // namespace otpbox::provisioning
