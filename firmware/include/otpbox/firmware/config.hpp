#pragma once

// otpboxd's configuration, read from one TOML file (docs/architecture.md
// shows every key). Relative paths are taken relative to the file's folder.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "otpbox/firmware/api/server.hpp"
#include "otpbox/gsm/modem_pool.hpp"
#include "otpbox/hsm/hsm.hpp"

namespace otpbox::firmware {

class ConfigError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct ApiConfig {
    std::string listen = "127.0.0.1";
    std::uint16_t port = 8443;
    std::filesystem::path ca_file;
    std::filesystem::path certificate_file;
    std::filesystem::path key_file;
    std::string key_label;  // the TLS key in the HSM; when set, key_file is unused
    std::filesystem::path crl_file;
    // [[api.clients]] followed by the entries of clients_file (when it exists).
    std::vector<api::AllowedClient> clients;
    std::filesystem::path clients_file;          // empty: none
    std::chrono::seconds ticket_lifetime{3600};  // zero: no session tickets
    unsigned threads = 4;
    api::ServerLimits limits;
};

struct SmsConfig {
    std::vector<std::string> allowed_countries{"+49"};
    unsigned otp_digits = 6;
    std::chrono::seconds otp_validity{600};
    std::string template_text =
        "Ihr Anmeldecode: {code}. Er gilt 10 Minuten. Geben Sie ihn nicht weiter.";
    std::string default_country = "49";
};

struct PincardConfig {
    unsigned columns = 8;
    unsigned rows = 8;
    unsigned cell_length = 2;
    std::string alphabet = "0123456789";
    unsigned challenge_cells = 3;
    std::chrono::seconds challenge_validity{300};
};

struct Config {
    std::filesystem::path file;  // where it was read from
    ApiConfig api;
    hsm::HsmConfig hsm;
    std::filesystem::path database;
    SmsConfig sms;
    std::vector<gsm::ModemConfig> modems;
    PincardConfig pincard;
    std::string log_level = "info";
    std::filesystem::path audit_anchor_file;  // empty: the system journal
};

// Throws ConfigError naming the file, the key and the problem.
[[nodiscard]] Config load_config(const std::filesystem::path& file);

// The SMS text for a code: the template with {code} replaced (the
// configuration refuses a template without it).
[[nodiscard]] std::string fill_sms_template(std::string text, const std::string& code);

// The parts every OTP SMS of this template takes: the code always has
// otp_digits digits, so all have the same length. Throws gsm::PduError when
// the SMS path cannot carry it.
[[nodiscard]] std::size_t otp_sms_parts(const SmsConfig& sms);

}  // namespace otpbox::firmware
