#pragma once

// What the console works on: the configuration, the HSM token, the database
// and the audit log of the appliance whose otpbox.toml it was given. The
// console shares them with otpboxd, which notices changes on its own (see
// docs/console.md); each part is opened when a command first needs it.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "otpbox/firmware/audit_log.hpp"
#include "otpbox/firmware/config.hpp"
#include "otpbox/firmware/database.hpp"
#include "otpbox/firmware/secrets.hpp"
#include "otpbox/hsm/hsm.hpp"
#include "otpbox/hsm/token_admin.hpp"

namespace otpbox::provisioning::console {

// The [console] table of otpbox.toml.
struct ConsoleSettings {
    std::filesystem::path password_file;  // default: console.passwd beside the config
    std::chrono::seconds idle{300};
};

[[nodiscard]] ConsoleSettings load_console_settings(const std::filesystem::path& config_file);

// The TLS key's label when the configuration names none.
inline constexpr std::string_view kDefaultTlsKeyLabel = "otpbox-tls-v1";
inline constexpr std::string_view kActor = "console:technician";

class Appliance {
  public:
    explicit Appliance(std::filesystem::path config_file);

    // Read again before every command, so edits by hand count too.
    void reload();
    [[nodiscard]] const firmware::Config& config() const { return m_config; }
    [[nodiscard]] const ConsoleSettings& settings() const { return m_settings; }
    [[nodiscard]] const std::filesystem::path& config_file() const { return m_config_file; }

    [[nodiscard]] hsm::ModuleSpec module() const;
    [[nodiscard]] bool token_initialised() const;
    [[nodiscard]] std::string tls_key_label() const;

    // Logged in with the PIN file; throws hsm::HsmError with one line.
    [[nodiscard]] hsm::Hsm& hsm();
    [[nodiscard]] std::shared_ptr<hsm::Hsm> shared_hsm();
    // Forgets the session after an HSM error, so the next command tries anew.
    void forget_hsm() noexcept;

    [[nodiscard]] firmware::Database& database();
    [[nodiscard]] firmware::Secrets& secrets();
    [[nodiscard]] firmware::AuditLog& audit();

    // Records a console action in the audit log; without the HSM (before
    // the token exists) it goes to the console's own log instead.
    void record(std::string_view action, std::string_view subject, std::string_view outcome);
    // How many actions were recorded so far (in the log or the console's own).
    [[nodiscard]] std::uint64_t records() const { return m_records; }

  private:
    std::uint64_t m_records = 0;
    std::filesystem::path m_config_file;
    firmware::Config m_config;
    ConsoleSettings m_settings;
    std::shared_ptr<hsm::Hsm> m_hsm;
    std::unique_ptr<firmware::Secrets> m_secrets;
    std::unique_ptr<firmware::Database> m_database;
    std::unique_ptr<firmware::AuditLog> m_audit;
};

}  // namespace otpbox::provisioning::console
