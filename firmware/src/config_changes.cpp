#include "config_changes.hpp"

#include <algorithm>
#include <cstddef>

namespace otpbox::firmware::detail {

namespace {

bool same_clients(const std::vector<api::AllowedClient>& a,
                  const std::vector<api::AllowedClient>& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const auto& x, const auto& y) {
        return x.subject == y.subject && x.role == y.role;
    });
}

// Collects the keys whose two values differ.
class Keys {
  public:
    template <class T>
    void compare(const std::string& key, const T& running, const T& read) {
        if (!(running == read)) {
            m_keys.push_back(key);
        }
    }

    std::vector<std::string> take() { return std::move(m_keys); }

  private:
    std::vector<std::string> m_keys;
};

void compare_api(Keys& keys, const ApiConfig& a, const ApiConfig& b) {
    keys.compare("api.listen", a.listen, b.listen);
    keys.compare("api.port", a.port, b.port);
    keys.compare("api.threads", a.threads, b.threads);
    keys.compare("api.workers", a.limits.workers, b.limits.workers);
    keys.compare("api.max_connections", a.limits.max_connections, b.limits.max_connections);
    keys.compare("api.max_header_bytes", a.limits.max_header, b.limits.max_header);
    keys.compare("api.handshake_timeout_seconds", a.limits.handshake_timeout,
                 b.limits.handshake_timeout);
    keys.compare("api.request_timeout_seconds", a.limits.request_timeout, b.limits.request_timeout);
    keys.compare("api.idle_timeout_seconds", a.limits.idle_timeout, b.limits.idle_timeout);
    keys.compare("api.answer_timeout_ms", a.limits.answer_timeout, b.limits.answer_timeout);
}

void compare_hsm(Keys& keys, const hsm::HsmConfig& a, const hsm::HsmConfig& b) {
    keys.compare("hsm.module", a.module_path, b.module_path);
    keys.compare("hsm.token", a.token_label, b.token_label);
    keys.compare("hsm.pin_file", a.pin_file, b.pin_file);
    keys.compare("hsm.call_timeout_ms", a.call_timeout, b.call_timeout);
    keys.compare("hsm.max_sessions", a.max_sessions, b.max_sessions);
    keys.compare("hsm.environment", a.environment, b.environment);
}

void compare_sms(Keys& keys, const SmsConfig& a, const SmsConfig& b) {
    keys.compare("sms.allowed_countries", a.allowed_countries, b.allowed_countries);
    keys.compare("sms.otp_digits", a.otp_digits, b.otp_digits);
    keys.compare("sms.otp_validity_seconds", a.otp_validity, b.otp_validity);
    keys.compare("sms.template", a.template_text, b.template_text);
    keys.compare("sms.default_country", a.default_country, b.default_country);
}

void compare_modems(Keys& keys, const std::vector<gsm::ModemConfig>& a,
                    const std::vector<gsm::ModemConfig>& b) {
    if (a.size() != b.size()) {
        keys.compare("modems", a.size(), b.size());
        return;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        const auto key = [i](const char* name) {
            return "modems[" + std::to_string(i) + "]." + name;
        };
        keys.compare(key("name"), a[i].name, b[i].name);
        keys.compare(key("device"), a[i].device, b[i].device);
        keys.compare(key("baud"), a[i].baud, b[i].baud);
        keys.compare(key("sim_pin_file"), a[i].sim_pin, b[i].sim_pin);
        keys.compare(key("hardware_flow_control"), a[i].hardware_flow_control,
                     b[i].hardware_flow_control);
        keys.compare(key("reset_with_cfun"), a[i].reset_with_cfun, b[i].reset_with_cfun);
        keys.compare(key("command_timeout_ms"), a[i].command_timeout, b[i].command_timeout);
        keys.compare(key("send_timeout_ms"), a[i].send_timeout, b[i].send_timeout);
        keys.compare(key("poll_interval_seconds"), a[i].poll_interval, b[i].poll_interval);
    }
}

void compare_pincard(Keys& keys, const PincardConfig& a, const PincardConfig& b) {
    keys.compare("pincard.columns", a.columns, b.columns);
    keys.compare("pincard.rows", a.rows, b.rows);
    keys.compare("pincard.cell_length", a.cell_length, b.cell_length);
    keys.compare("pincard.alphabet", a.alphabet, b.alphabet);
    keys.compare("pincard.challenge_cells", a.challenge_cells, b.challenge_cells);
    keys.compare("pincard.challenge_seconds", a.challenge_validity, b.challenge_validity);
}

}  // namespace

bool tls_settings_differ(const Config& running, const Config& read) {
    const auto& a = running.api;
    const auto& b = read.api;
    return a.ca_file != b.ca_file || a.certificate_file != b.certificate_file ||
           a.key_file != b.key_file || a.key_label != b.key_label || a.crl_file != b.crl_file ||
           a.ticket_lifetime != b.ticket_lifetime || a.clients_file != b.clients_file ||
           !same_clients(a.clients, b.clients);
}

std::vector<std::string> settings_needing_restart(const Config& running, const Config& read) {
    Keys keys;
    compare_api(keys, running.api, read.api);
    compare_hsm(keys, running.hsm, read.hsm);
    keys.compare("database.path", running.database, read.database);
    compare_sms(keys, running.sms, read.sms);
    compare_modems(keys, running.modems, read.modems);
    compare_pincard(keys, running.pincard, read.pincard);
    keys.compare("log.level", running.log_level, read.log_level);
    keys.compare("audit.anchor_file", running.audit_anchor_file, read.audit_anchor_file);
    return keys.take();
}

}  // namespace otpbox::firmware::detail
