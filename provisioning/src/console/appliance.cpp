#include "console/appliance.hpp"

#include <spdlog/spdlog.h>
#include <toml++/toml.h>

#include "otpbox/firmware/clock.hpp"
#include "otpbox/firmware/log_text.hpp"
#include "otpbox/hsm/error.hpp"

namespace otpbox::provisioning::console {

namespace fs = std::filesystem;

ConsoleSettings load_console_settings(const fs::path& config_file) {
    ConsoleSettings settings;
    const auto dir = config_file.parent_path();
    settings.password_file = dir / "console.passwd";
    toml::table table;
    try {
        table = toml::parse_file(config_file.string());
    } catch (const toml::parse_error& error) {
        throw firmware::ConfigError(config_file.string() + ": " + std::string(error.description()));
    }
    const auto fail = [&](std::string_view key, std::string_view problem) {
        throw firmware::ConfigError(config_file.string() + ": " + std::string(key) + ": " +
                                    std::string(problem));
    };
    const auto console = table["console"];
    if (const auto file = console["password_file"]) {
        if (!file.is_string() || file.value_or(std::string()).empty()) {
            fail("console.password_file", "must be a file name");
        }
        settings.password_file = dir / *file.value<std::string>();
    }
    if (const auto idle = console["idle_seconds"]) {
        const auto seconds = idle.value<std::int64_t>();
        if (!idle.is_integer() || *seconds < 5 || *seconds > 86400) {
            fail("console.idle_seconds", "must be an integer between 5 and 86400");
        }
        settings.idle = std::chrono::seconds(*seconds);
    }
    return settings;
}

Appliance::Appliance(fs::path config_file) : m_config_file(std::move(config_file)) {
    reload();
}

void Appliance::reload() {
    m_config = firmware::load_config(m_config_file);
    m_settings = load_console_settings(m_config_file);
}

hsm::ModuleSpec Appliance::module() const {
    return {m_config.hsm.module_path, m_config.hsm.environment};
}

bool Appliance::token_initialised() const {
    return hsm::token_exists(module(), m_config.hsm.token_label);
}

std::string Appliance::tls_key_label() const {
    return m_config.api.key_label.empty() ? std::string(kDefaultTlsKeyLabel)
                                          : m_config.api.key_label;
}

std::shared_ptr<hsm::Hsm> Appliance::shared_hsm() {
    if (!m_hsm) {
        m_hsm = hsm::Hsm::open(m_config.hsm);
    }
    return m_hsm;
}

hsm::Hsm& Appliance::hsm() {
    return *shared_hsm();
}

void Appliance::forget_hsm() noexcept {
    m_audit.reset();
    m_secrets.reset();
    m_hsm.reset();
}

firmware::Database& Appliance::database() {
    if (!m_database) {
        m_database = std::make_unique<firmware::Database>(m_config.database);
    }
    return *m_database;
}

firmware::Secrets& Appliance::secrets() {
    if (!m_secrets) {
        m_secrets = std::make_unique<firmware::Secrets>(shared_hsm());
    }
    return *m_secrets;
}

firmware::AuditLog& Appliance::audit() {
    if (!m_audit) {
        m_audit = std::make_unique<firmware::AuditLog>(database(), secrets());
    }
    return *m_audit;
}

void Appliance::record(std::string_view action, std::string_view subject,
                       std::string_view outcome) {
    ++m_records;
    const firmware::AuditEntry entry{std::string(kActor), "console." + std::string(action),
                                     std::string(subject), std::string(outcome)};
    try {
        auto& log = audit();
        database().transaction([&] { log.record(entry, firmware::SystemClock().now()); });
    } catch (const std::exception& error) {
        // Before the token and its keys exist no row can be MACed.
        spdlog::warn("event=console_action action={} subject=\"{}\" outcome={} audit=\"{}\"",
                     entry.action, firmware::quotable(entry.subject), entry.outcome,
                     firmware::quotable(error.what()));
        forget_hsm();
    }
}

}  // namespace otpbox::provisioning::console
