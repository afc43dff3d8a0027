#include "config_keys.hpp"

#include <algorithm>
#include <span>
#include <string>
#include <string_view>

#include "otpbox/firmware/config.hpp"

namespace otpbox::firmware::detail {

namespace {

using Keys = std::span<const std::string_view>;

// [console] is the technician console's (docs/console.md); the daemon
// accepts it so that both read one file. [hsm.environment] holds whatever
// the module needs and is not checked.
constexpr std::string_view kTopLevel[] = {"api",     "hsm",     "database", "sms",  "modems",
                                          "pincard", "console", "log",      "audit"};
constexpr std::string_view kApi[] = {"listen",
                                     "port",
                                     "ca",
                                     "certificate",
                                     "key",
                                     "key_label",
                                     "crl",
                                     "clients",
                                     "clients_file",
                                     "threads",
                                     "workers",
                                     "answer_timeout_ms",
                                     "max_connections",
                                     "max_header_bytes",
                                     "handshake_timeout_seconds",
                                     "request_timeout_seconds",
                                     "idle_timeout_seconds",
                                     "session_ticket_seconds"};
constexpr std::string_view kClient[] = {"subject", "role"};
constexpr std::string_view kHsm[] = {"module",          "token",        "pin_file",
                                     "call_timeout_ms", "max_sessions", "environment"};
constexpr std::string_view kDatabase[] = {"path"};
constexpr std::string_view kSms[] = {"allowed_countries", "otp_digits", "otp_validity_seconds",
                                     "template", "default_country"};
constexpr std::string_view kModem[] = {"name",
                                       "device",
                                       "baud",
                                       "sim_pin_file",
                                       "hardware_flow_control",
                                       "reset_with_cfun",
                                       "command_timeout_ms",
                                       "send_timeout_ms",
                                       "poll_interval_seconds"};
constexpr std::string_view kPincard[] = {
    "columns", "rows", "cell_length", "alphabet", "challenge_cells", "challenge_seconds"};
constexpr std::string_view kConsole[] = {"password_file", "idle_seconds"};
constexpr std::string_view kLog[] = {"level"};
constexpr std::string_view kAudit[] = {"anchor_file"};

class KeyCheck {
  public:
    explicit KeyCheck(const std::filesystem::path& file) : m_file(file) {}

    void keys(const toml::table& table, const std::string& where, Keys known) const {
        for (const auto& [key, value] : table) {
            if (std::ranges::find(known, key.str()) == known.end()) {
                fail(name(where, key.str()), "is not a known key");
            }
        }
    }

    // A section that may be absent; when present it must be a table.
    void section(const toml::table& root, std::string_view key, Keys known) const {
        const auto* node = root.get(key);
        if (node == nullptr) {
            return;
        }
        const auto* table = node->as_table();
        if (table == nullptr) {
            fail(std::string(key), "must be a table ([" + std::string(key) + "])");
        }
        keys(*table, std::string(key), known);
    }

    // A list of tables that may be absent; load_config names its other faults.
    void each(const toml::table& root, std::string_view key, Keys known) const {
        const auto* list = root.at_path(key).as_array();
        if (list == nullptr) {
            return;
        }
        for (std::size_t i = 0; i < list->size(); ++i) {
            if (const auto* table = (*list)[i].as_table()) {
                keys(*table, std::string(key) + "[" + std::to_string(i) + "]", known);
            }
        }
    }

  private:
    [[noreturn]] void fail(const std::string& key, std::string_view problem) const {
        throw ConfigError(m_file.string() + ": " + key + ": " + std::string(problem));
    }

    static std::string name(const std::string& where, std::string_view key) {
        return where.empty() ? std::string(key) : where + "." + std::string(key);
    }

    const std::filesystem::path& m_file;
};

}  // namespace

void refuse_unknown_keys(const std::filesystem::path& file, const toml::table& root) {
    const KeyCheck check(file);
    check.keys(root, "", kTopLevel);
    check.section(root, "api", kApi);
    check.each(root, "api.clients", kClient);
    check.section(root, "hsm", kHsm);
    check.section(root, "database", kDatabase);
    check.section(root, "sms", kSms);
    check.each(root, "modems", kModem);
    check.section(root, "pincard", kPincard);
    check.section(root, "console", kConsole);
    check.section(root, "log", kLog);
    check.section(root, "audit", kAudit);
}

}  // namespace otpbox::firmware::detail
