#include "otpbox/firmware/config.hpp"

#include <spdlog/common.h>
#include <toml++/toml.h>
#include <boost/asio/ip/address.hpp>

#include <sys/stat.h>

#include <fstream>

#include "client_list.hpp"
#include "config_keys.hpp"
#include "otpbox/firmware/clients_file.hpp"
#include "otpbox/gsm/pdu.hpp"
#include "toml_file.hpp"

namespace otpbox::firmware {

namespace {

namespace fs = std::filesystem;

class Reader {
  public:
    // prefix names root in messages: "modems[1]." for a modem's table.
    Reader(const fs::path& file, const toml::table& root, std::string prefix = {})
        : m_file(file), m_root(root), m_prefix(std::move(prefix)) {}

    [[noreturn]] void fail(std::string_view key, std::string_view problem) const {
        throw ConfigError(m_file.string() + ": " + m_prefix + std::string(key) + ": " +
                          std::string(problem));
    }

    std::string string(std::string_view key, std::string fallback) const {
        const auto node = m_root.at_path(key);
        if (!node) {
            return fallback;
        }
        const auto value = node.value<std::string>();
        if (!value) {
            fail(key, "must be a string");
        }
        return *value;
    }

    std::int64_t integer(std::string_view key, std::int64_t fallback, std::int64_t min,
                         std::int64_t max) const {
        const auto node = m_root.at_path(key);
        if (!node) {
            return fallback;
        }
        const auto value = node.value<std::int64_t>();
        if (!value || !node.is_integer()) {
            fail(key, "must be an integer");
        }
        if (*value < min || *value > max) {
            fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
        }
        return *value;
    }

    bool boolean(std::string_view key, bool fallback) const {
        const auto node = m_root.at_path(key);
        if (!node) {
            return fallback;
        }
        if (!node.is_boolean()) {
            fail(key, "must be true or false");
        }
        return *node.value<bool>();
    }

    // A path relative to the configuration file's folder.
    fs::path path(std::string_view key, const fs::path& fallback = {}) const {
        const auto text = string(key, fallback.string());
        if (text.empty()) {
            return {};
        }
        const fs::path value(text);
        return value.is_absolute() ? value : (m_file.parent_path() / value).lexically_normal();
    }

    std::vector<std::string> strings(std::string_view key,
                                     std::vector<std::string> fallback) const {
        const auto node = m_root.at_path(key);
        if (!node) {
            return fallback;
        }
        const auto* array = node.as_array();
        if (array == nullptr) {
            fail(key, "must be a list of strings");
        }
        std::vector<std::string> values;
        for (const auto& element : *array) {
            const auto value = element.value<std::string>();
            if (!value) {
                fail(key, "must be a list of strings");
            }
            values.push_back(*value);
        }
        return values;
    }

    const toml::array* array(std::string_view key) const {
        const auto node = m_root.at_path(key);
        if (!node) {
            return nullptr;
        }
        if (!node.is_array()) {
            fail(key, "must be a list of tables ([[" + std::string(key) + "]])");
        }
        return node.as_array();
    }

    const toml::table& root() const { return m_root; }
    const fs::path& file() const { return m_file; }

  private:
    fs::path m_file;
    const toml::table& m_root;
    std::string m_prefix;
};

ApiConfig read_api(const Reader& reader) {
    ApiConfig api;
    api.listen = reader.string("api.listen", api.listen);
    // Checked here: a name the daemon could never listen on would otherwise
    // leave it running without an API, retrying for ever.
    boost::system::error_code not_an_address;
    (void)boost::asio::ip::make_address(api.listen, not_an_address);
    if (not_an_address) {
        reader.fail("api.listen",
                    "must be an IP address like 127.0.0.1 or ::1, not \"" + api.listen + "\"");
    }
    // Port 0 would have the kernel pick a port no portal knows of.
    api.port = static_cast<std::uint16_t>(reader.integer("api.port", api.port, 1, 65535));
    api.ca_file = reader.path("api.ca");
    api.certificate_file = reader.path("api.certificate");
    api.key_file = reader.path("api.key");
    api.key_label = reader.string("api.key_label", "");
    api.crl_file = reader.path("api.crl");
    api.threads = static_cast<unsigned>(reader.integer("api.threads", api.threads, 1, 64));
    api.limits.workers = static_cast<std::size_t>(
        reader.integer("api.workers", static_cast<std::int64_t>(api.limits.workers), 1, 256));
    // Health and metrics have workers of their own: a monitor gets its
    // answer while the HSM holds every other worker.
    api.limits.monitor_paths = {"/v1/health", "/metrics"};
    api.limits.max_connections =
        static_cast<std::size_t>(reader.integer("api.max_connections", 2000, 1, 100000));
    // The body limit stays 16 KiB: DESIGN.md's API answers 413 above it.
    api.limits.max_header = static_cast<std::size_t>(reader.integer(
        "api.max_header_bytes", static_cast<std::int64_t>(api.limits.max_header), 1024, 65536));
    const auto seconds = [&](const char* key, std::chrono::seconds fallback, std::int64_t max) {
        return std::chrono::seconds(reader.integer(key, fallback.count(), 1, max));
    };
    api.limits.handshake_timeout =
        seconds("api.handshake_timeout_seconds", api.limits.handshake_timeout, 120);
    api.limits.request_timeout =
        seconds("api.request_timeout_seconds", api.limits.request_timeout, 600);
    api.limits.idle_timeout = seconds("api.idle_timeout_seconds", api.limits.idle_timeout, 3600);
    // Up to a day: RFC 7525 3.4 asks for ticket keys changed regularly, and a
    // key here lives twice the tickets' lifetime.
    api.ticket_lifetime = std::chrono::seconds(
        reader.integer("api.session_ticket_seconds", api.ticket_lifetime.count(), 0, 86400));

    api.clients = detail::read_client_list(reader.file(), reader.root(), "api.clients");
    api.clients_file = reader.path("api.clients_file");
    if (!api.clients_file.empty()) {
        const auto listed = read_clients_file(api.clients_file);
        api.clients.insert(api.clients.end(), listed.begin(), listed.end());
    }
    return api;
}

hsm::HsmConfig read_hsm(const Reader& reader) {
    hsm::HsmConfig config;
    config.module_path = reader.string("hsm.module", "/usr/lib/softhsm/libsofthsm2.so");
    config.token_label = reader.string("hsm.token", "otpbox");
    config.pin_file = reader.path("hsm.pin_file");
    config.call_timeout =
        std::chrono::milliseconds(reader.integer("hsm.call_timeout_ms", 5000, 100, 600000));
    config.max_sessions = static_cast<std::size_t>(reader.integer("hsm.max_sessions", 8, 1, 256));
    const auto environment_node = reader.root().at_path("hsm.environment");
    if (environment_node && !environment_node.is_table()) {
        reader.fail("hsm.environment", "must be a table ([hsm.environment])");
    }
    if (const auto* environment = environment_node.as_table()) {
        for (const auto& [name, value] : *environment) {
            const auto text = value.value<std::string>();
            if (!text) {
                reader.fail("hsm.environment." + std::string(name.str()), "must be a string");
            }
            // Values that name files are relative to the config's folder too.
            fs::path as_path(*text);
            const bool looks_like_path = text->find('/') != std::string::npos;
            config.environment[std::string(name.str())] =
                looks_like_path && as_path.is_relative()
                    ? (reader.file().parent_path() / as_path).lexically_normal().string()
                    : *text;
        }
    }
    if (config.pin_file.empty()) {
        reader.fail("hsm.pin_file", "is missing");
    }
    return config;
}

// Every SMS made from the template has the same length, since the code is
// always otp_digits digits, which GSM 7-bit holds: so the text either always
// fits the SMS path (at most 255 parts of 153 GSM characters, or of 67 UCS-2
// characters when a character of the template needs UCS-2) or never does.
// Checked with the encoder the modems use, so that no OTP is refused at send
// time for a setting the file held all along.
void refuse_unsendable_template(const Reader& reader, const SmsConfig& sms) {
    try {
        (void)otp_sms_parts(sms);
    } catch (const gsm::PduError& error) {
        reader.fail("sms.template", std::string("is too long to send (") + error.what() +
                                        "): an SMS takes at most 255 parts, 39015 GSM 7-bit "
                                        "characters or 17085 UCS-2 ones, code included");
    }
}

SmsConfig read_sms(const Reader& reader) {
    SmsConfig sms;
    sms.allowed_countries = reader.strings("sms.allowed_countries", sms.allowed_countries);
    // An empty list would make every number "not allowed" at registration,
    // an error that sends the portal team looking in the wrong place.
    if (sms.allowed_countries.empty()) {
        reader.fail("sms.allowed_countries",
                    "must name at least one country code, such as \"+49\"");
    }
    for (const auto& prefix : sms.allowed_countries) {
        if (prefix.size() < 2 || prefix[0] != '+' ||
            prefix.find_first_not_of("0123456789", 1) != std::string::npos) {
            reader.fail("sms.allowed_countries",
                        "entries look like \"+49\", not \"" + prefix + "\"");
        }
    }
    sms.otp_digits = static_cast<unsigned>(reader.integer("sms.otp_digits", sms.otp_digits, 6, 8));
    sms.otp_validity =
        std::chrono::seconds(reader.integer("sms.otp_validity_seconds", 600, 60, 3600));
    sms.template_text = reader.string("sms.template", sms.template_text);
    if (sms.template_text.find("{code}") == std::string::npos) {
        reader.fail("sms.template", "must contain {code}");
    }
    refuse_unsendable_template(reader, sms);
    // The country code a national number ("0170 ...") is taken in: digits
    // only, as E.164 writes it after the "+".
    sms.default_country = reader.string("sms.default_country", sms.default_country);
    if (sms.default_country.empty() || sms.default_country.size() > 3 ||
        sms.default_country[0] == '0' ||
        sms.default_country.find_first_not_of("0123456789") != std::string::npos) {
        reader.fail(
            "sms.default_country",
            "is a country code of 1 to 3 digits like \"49\", not \"" + sms.default_country + "\"");
    }
    return sms;
}

// The SIM PIN lives in a file only the daemon's user can read, like the
// HSM PIN; never in the configuration itself.
std::string read_sim_pin(const Reader& reader, const std::string& key, const fs::path& file) {
    struct stat info {};
    if (::stat(file.c_str(), &info) != 0) {
        reader.fail(key, "cannot read " + file.string());
    }
    if ((info.st_mode & 077) != 0) {
        reader.fail(key, file.string() + " may be read or written by others (chmod 600 it)");
    }
    std::ifstream in(file);
    std::string pin;
    std::getline(in, pin);
    if (pin.size() < 4 || pin.size() > 8 ||
        pin.find_first_not_of("0123456789") != std::string::npos) {
        reader.fail(key, "a SIM PIN is 4 to 8 digits");
    }
    return pin;
}

// Delivery reports and stored SIM PINs are matched by the modem's name, so
// two modems of one name could mark each other's SMS; two workers on one
// serial line would talk over each other.
void refuse_shared_modem(const Reader& reader, const std::vector<gsm::ModemConfig>& earlier,
                         const gsm::ModemConfig& modem, const std::string& key) {
    for (std::size_t i = 0; i < earlier.size(); ++i) {
        const std::string other = "modems[" + std::to_string(i) + "]";
        if (earlier[i].name == modem.name) {
            reader.fail(key + ".name", "\"" + modem.name + "\" is already the name of " + other);
        }
        if (earlier[i].device == modem.device) {
            reader.fail(key + ".device",
                        modem.device.string() + " is already the device of " + other);
        }
    }
}

std::vector<gsm::ModemConfig> read_modems(const Reader& reader) {
    std::vector<gsm::ModemConfig> modems;
    const auto* list = reader.array("modems");
    if (list == nullptr) {
        return modems;
    }
    for (std::size_t i = 0; i < list->size(); ++i) {
        const std::string key = "modems[" + std::to_string(i) + "]";
        const auto* table = (*list)[i].as_table();
        if (table == nullptr) {
            reader.fail(key, "must be a table");
        }
        const Reader modem(reader.file(), *table, key + ".");
        gsm::ModemConfig config;
        config.name = modem.string("name", "modem" + std::to_string(i));
        config.device = modem.path("device");
        if (config.device.empty()) {
            reader.fail(key + ".device", "is missing");
        }
        config.baud = static_cast<unsigned>(modem.integer("baud", 115200, 300, 4000000));
        const auto pin_file = modem.path("sim_pin_file");
        if (!pin_file.empty()) {
            config.sim_pin = read_sim_pin(reader, key + ".sim_pin_file", pin_file);
        }
        config.hardware_flow_control = modem.boolean("hardware_flow_control", false);
        config.reset_with_cfun = modem.boolean("reset_with_cfun", false);
        config.command_timeout =
            std::chrono::milliseconds(modem.integer("command_timeout_ms", 5000, 100, 120000));
        config.send_timeout =
            std::chrono::milliseconds(modem.integer("send_timeout_ms", 60000, 1000, 600000));
        config.poll_interval =
            std::chrono::seconds(modem.integer("poll_interval_seconds", 30, 1, 3600));
        refuse_shared_modem(reader, modems, config, key);
        modems.push_back(config);
    }
    return modems;
}

// Cells are drawn byte by byte from the alphabet: a repeated character
// makes some values likelier (all of them, in "00"), and a byte of a UTF-8
// sequence alone is no character a card could print or a user type.
bool distinct_printable_ascii(std::string_view alphabet) {
    for (std::size_t i = 0; i < alphabet.size(); ++i) {
        const char c = alphabet[i];
        if (c <= ' ' || c > '~' || alphabet.find(c, i + 1) != std::string_view::npos) {
            return false;
        }
    }
    return true;
}

// A challenge's answer is alphabet size ^ (cell_length * challenge_cells)
// values, all alike likely: fewer than a 6-digit SMS code's 10^6 would make
// the card the easier factor to guess (DESIGN.md's default card has exactly
// 10^6: 2 digits in each of 3 cells).
void refuse_guessable_challenge(const Reader& reader, const PincardConfig& card) {
    constexpr std::uint64_t kSixDigits = 1000000;
    std::uint64_t combinations = 1;
    for (unsigned i = 0; i < card.cell_length * card.challenge_cells && combinations < kSixDigits;
         ++i) {
        combinations *= card.alphabet.size();
    }
    if (combinations < kSixDigits) {
        reader.fail("pincard.challenge_cells",
                    "a challenge has only " + std::to_string(combinations) +
                        " possible answers (pincard.alphabet's " +
                        std::to_string(card.alphabet.size()) + " characters to the power of " +
                        "pincard.cell_length * pincard.challenge_cells = " +
                        std::to_string(card.cell_length * card.challenge_cells) +
                        "); at least 1000000 are needed, as many as a 6-digit code has: "
                        "make cells longer, ask more of them, or use a larger alphabet");
    }
}

PincardConfig read_pincard(const Reader& reader) {
    PincardConfig card;
    card.columns = static_cast<unsigned>(reader.integer("pincard.columns", card.columns, 1, 26));
    card.rows = static_cast<unsigned>(reader.integer("pincard.rows", card.rows, 1, 99));
    card.cell_length =
        static_cast<unsigned>(reader.integer("pincard.cell_length", card.cell_length, 1, 8));
    card.alphabet = reader.string("pincard.alphabet", card.alphabet);
    if (!distinct_printable_ascii(card.alphabet) || card.alphabet.size() < 2 ||
        card.alphabet.size() > 64) {
        reader.fail("pincard.alphabet", "must be 2 to 64 different printable ASCII characters");
    }
    card.challenge_cells = static_cast<unsigned>(
        reader.integer("pincard.challenge_cells", card.challenge_cells, 1, 8));
    if (card.challenge_cells > card.columns * card.rows) {
        reader.fail("pincard.challenge_cells", "is larger than the card");
    }
    refuse_guessable_challenge(reader, card);
    card.challenge_validity =
        std::chrono::seconds(reader.integer("pincard.challenge_seconds", 300, 30, 3600));
    return card;
}

// spdlog takes a name it does not know for "off": a typo would silence the
// daemon's log without a word.
std::string read_log_level(const Reader& reader) {
    auto level = reader.string("log.level", "info");
    if (level != "off" && spdlog::level::from_str(level) == spdlog::level::off) {
        reader.fail(
            "log.level",
            "must be trace, debug, info, warning, error, critical or off, not \"" + level + "\"");
    }
    return level;
}

// toml++ reads a folder as an empty file, which would then be refused for
// the first key it lacks.
void refuse_unusual_file(const fs::path& file) {
    std::error_code error;
    const auto status = fs::status(file, error);
    if (!fs::exists(status)) {
        throw ConfigError(file.string() + ": cannot be read (" +
                          (error ? error.message() : std::string("no such file")) + ")");
    }
    if (fs::is_directory(status)) {
        throw ConfigError(file.string() + ": is a folder, not a configuration file");
    }
    if (!fs::is_regular_file(status)) {
        throw ConfigError(file.string() + ": is not a regular file");
    }
}

}  // namespace

Config load_config(const fs::path& file) {
    refuse_unusual_file(file);
    const auto root = detail::parse_toml_file(file);

    const fs::path absolute = fs::absolute(file).lexically_normal();
    detail::refuse_unknown_keys(absolute, root);
    const Reader reader(absolute, root);
    Config config;
    config.file = absolute;
    config.api = read_api(reader);
    config.hsm = read_hsm(reader);
    // A request outlasts a wait for a free HSM session and then an HSM call
    // that overruns, so that when the HSM is the cause, its stall error ends
    // the request's work before the 503 at the deadline is sent.
    const auto call_timeout = config.hsm.call_timeout.count();
    config.api.limits.answer_timeout = std::chrono::milliseconds(
        reader.integer("api.answer_timeout_ms",
                       std::min<std::int64_t>(2 * call_timeout + 1000, 1200000), 100, 1200000));
    if (config.api.limits.answer_timeout.count() <= call_timeout) {
        reader.fail("api.answer_timeout_ms", "must be larger than hsm.call_timeout_ms (" +
                                                 std::to_string(call_timeout) + ")");
    }
    config.database = reader.path("database.path", "otpbox.db");
    config.sms = read_sms(reader);
    config.modems = read_modems(reader);
    config.pincard = read_pincard(reader);
    config.log_level = read_log_level(reader);
    config.audit_anchor_file = reader.path("audit.anchor_file");
    return config;
}

std::string fill_sms_template(std::string text, const std::string& code) {
    const auto at = text.find("{code}");
    return text.replace(at, 6, code);
}

std::size_t otp_sms_parts(const SmsConfig& sms) {
    const auto text = fill_sms_template(sms.template_text, std::string(sms.otp_digits, '0'));
    return gsm::encode_submit("+491700000000", text).size();
}

}  // namespace otpbox::firmware
