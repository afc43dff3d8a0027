// The commands the simulated modem knows: V.250 basic commands, TS 27.007
// (identity, SIM, registration, signal) and TS 27.005 (SMS in PDU mode).

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <utility>

#include "modem_session.hpp"

namespace otpbox::modemsim {
namespace {

using Kind = Command::Kind;

// TS 27.007 9.2.1.
constexpr int kCmeNotSupported = 4;
constexpr int kCmeSimPinRequired = 11;
constexpr int kCmeSimBusy = 14;
constexpr int kCmeIncorrectPassword = 16;
constexpr int kCmeInvalidCharacters = 25;
constexpr int kCmeOperationNotAllowed = 3;
// TS 27.005 3.2.5.
constexpr int kCmsInvalidPdu = 304;
constexpr int kCmsNoNetwork = 331;
constexpr int kCmsOperationNotAllowed = 302;

// TS 23.040 9.2.2.2: the longest SMS-SUBMIT TPDU.
constexpr int kMaxTpduLength = 164;
constexpr std::string_view kManufacturer = "otpbox";
constexpr std::string_view kModel = "modemsim";
constexpr std::string_view kRevision = "1.0";
// Test values: an IMEI and an IMSI of a German network that belong to no one.
constexpr std::string_view kImei = "350000000000006";
constexpr std::string_view kImsi = "262019999999999";
constexpr std::string_view kSmsc = "+491710760000";

[[nodiscard]] std::string_view error_text(int code) {
    static constexpr std::array<std::pair<int, std::string_view>, 6> kTexts = {{
        {kCmeOperationNotAllowed, "operation not allowed"},
        {kCmeNotSupported, "operation not supported"},
        {kCmeSimPinRequired, "SIM PIN required"},
        {kCmeSimBusy, "SIM busy"},
        {kCmeIncorrectPassword, "incorrect password"},
        {kCmeInvalidCharacters, "invalid characters in text string"},
    }};
    for (const auto& [known, text] : kTexts) {
        if (known == code) {
            return text;
        }
    }
    return "unknown";
}

[[nodiscard]] std::optional<int> parse_int(std::string_view text) {
    int value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

// The first argument of a set command: "2,1,0" gives 2.
[[nodiscard]] std::optional<int> first_int(std::string_view arguments) {
    return parse_int(arguments.substr(0, arguments.find(',')));
}

[[nodiscard]] std::string unquote(std::string_view text) {
    if (text.size() >= 2 && text.front() == '"' && text.back() == '"') {
        text = text.substr(1, text.size() - 2);
    }
    return std::string(text);
}

[[nodiscard]] std::size_t count_digits(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
        ++i;
    }
    return i;
}

}  // namespace

std::string ModemSession::cme_error(int code) const {
    if (m_cmee == 0) {
        return "ERROR";
    }
    if (m_cmee == 2) {
        return "+CME ERROR: " + std::string(error_text(code));
    }
    return "+CME ERROR: " + std::to_string(code);
}

Reply ModemSession::cme(int code) const {
    return {{}, cme_error(code)};
}

// SIM errors are answered as +CME ERROR for every command, SMS ones too,
// where TS 27.005 would have +CMS ERROR 311 and 314: hosts test for these.
std::optional<Reply> ModemSession::sim_not_ready() const {
    if (!m_sim_ready) {
        return cme(kCmeSimPinRequired);
    }
    if (std::chrono::steady_clock::now() < m_sim_busy_until) {
        return cme(kCmeSimBusy);
    }
    return std::nullopt;
}

// V.250 5.3: a letter (or '&' and a letter) and an optional number; S
// registers take "=value" or "?".
Reply ModemSession::run_basic(std::string_view& rest) {
    std::string name(1, static_cast<char>(std::toupper(static_cast<unsigned char>(rest[0]))));
    rest.remove_prefix(1);
    if (name == "&" && !rest.empty()) {
        name += static_cast<char>(std::toupper(static_cast<unsigned char>(rest[0])));
        rest.remove_prefix(1);
    }
    const std::size_t digits = count_digits(rest);
    const int value = digits == 0 ? 0 : parse_int(rest.substr(0, digits)).value_or(-1);
    rest.remove_prefix(digits);

    if (name == "S") {
        if (rest.starts_with('?')) {
            rest.remove_prefix(1);
            return {{"000"}};
        }
        if (rest.starts_with('=')) {
            rest.remove_prefix(1);
            rest.remove_prefix(count_digits(rest));
            return {};
        }
        return {{}, "ERROR"};
    }
    if (name == "E" && (value == 0 || value == 1)) {
        m_echo = value == 1;
        return {};
    }
    if (name == "Z" || name == "&F") {
        m_echo = true;
        m_cmee = 0;
        m_creg = 0;
        m_cereg = 0;
        return {};
    }
    if (name == "I") {
        return {{std::string(kManufacturer) + " " + std::string(kModel) + " " +
                 std::string(kRevision)}};
    }
    // Result code form, verbosity and DTR/DCD handling are accepted and
    // ignored: the simulator always answers verbose, like V1 Q0.
    if (name == "V" || name == "Q" || name == "X" || name == "&C" || name == "&D" || name == "L" ||
        name == "M") {
        return {};
    }
    rest = {};
    return {{}, "ERROR"};
}

ModemSession::Handler ModemSession::handler_for(std::string_view name) {
    static constexpr std::array<std::pair<std::string_view, Handler>, 26> kHandlers = {{
        {"+CMEE", &ModemSession::cmee},     {"+CPIN", &ModemSession::cpin},
        {"+CREG", &ModemSession::creg},     {"+CEREG", &ModemSession::creg},
        {"+CGREG", &ModemSession::creg},    {"+CMGF", &ModemSession::cmgf},
        {"+CNMI", &ModemSession::cnmi},     {"+CSQ", &ModemSession::csq},
        {"+CSCA", &ModemSession::csca},     {"+CSCS", &ModemSession::cscs},
        {"+CGMI", &ModemSession::identity}, {"+CGMM", &ModemSession::identity},
        {"+CGMR", &ModemSession::identity}, {"+CGSN", &ModemSession::identity},
        {"+CIMI", &ModemSession::cimi},     {"+CFUN", &ModemSession::cfun},
        {"+CPMS", &ModemSession::cpms},     {"+CSMS", &ModemSession::csms},
        {"+COPS", &ModemSession::cops},     {"+CSMP", &ModemSession::csmp},
        {"+CMGL", &ModemSession::storage},  {"+CMGD", &ModemSession::storage},
        {"+CNMA", &ModemSession::accept},   {"+CMMS", &ModemSession::accept},
        {"+CMGS", &ModemSession::cmgs},     {"+GCAP", &ModemSession::identity},
    }};
    for (const auto& [known, handler] : kHandlers) {
        if (known == name) {
            return handler;
        }
    }
    return nullptr;
}

Reply ModemSession::cmee(const Command& command) {
    switch (command.kind) {
        case Kind::read:
            return {{"+CMEE: " + std::to_string(m_cmee)}};
        case Kind::test:
            return {{"+CMEE: (0-2)"}};
        case Kind::set:
            if (const auto value = first_int(command.arguments);
                value && *value >= 0 && *value <= 2) {
                m_cmee = *value;
                return {};
            }
            return cme(kCmeNotSupported);
        case Kind::action:
            m_cmee = 0;
            return {};
    }
    return cme(kCmeNotSupported);
}

// TS 27.007 8.3.
Reply ModemSession::cpin(const Command& command) {
    if (command.kind == Kind::read) {
        return {{m_sim_ready ? "+CPIN: READY" : "+CPIN: SIM PIN"}};
    }
    if (command.kind == Kind::test) {
        return {};
    }
    if (command.kind != Kind::set) {
        return cme(kCmeNotSupported);
    }
    if (m_sim_ready) {
        return cme(kCmeOperationNotAllowed);
    }
    const std::string pin = unquote(command.arguments.substr(0, command.arguments.find(',')));
    if (pin != *m_options.sim_pin) {
        return cme(kCmeIncorrectPassword);
    }
    m_sim_ready = true;
    m_sim_busy_until = std::chrono::steady_clock::now() + m_options.sim_busy;
    return {};
}

// TS 27.007 7.2 (and 10.1.19, 10.1.22 for GPRS and EPS): n is how much the
// unsolicited code says; stat 1 is registered, 2 searching.
Reply ModemSession::creg(const Command& command) {
    int& mode = command.name == "+CREG" ? m_creg : m_cereg;
    const std::string name = command.name.substr(1);
    const int status = registered() ? 1 : 2;
    switch (command.kind) {
        case Kind::read: {
            std::string line =
                "+" + name + ": " + std::to_string(mode) + "," + std::to_string(status);
            if (mode == 2 && registered()) {
                line += ",\"1A2B\",\"00C3D4E5\"";
            }
            return {{line}};
        }
        case Kind::test:
            return {{"+" + name + ": (0-2)"}};
        case Kind::set:
            if (const auto value = first_int(command.arguments);
                value && *value >= 0 && *value <= 2) {
                mode = *value;
                return {};
            }
            return cme(kCmeNotSupported);
        case Kind::action:
            return cme(kCmeNotSupported);
    }
    return cme(kCmeNotSupported);
}

// TS 27.005 3.2.3: PDU mode only; text mode is not simulated.
Reply ModemSession::cmgf(const Command& command) {
    switch (command.kind) {
        case Kind::read:
            return {{"+CMGF: 0"}};
        case Kind::test:
            return {{"+CMGF: (0)"}};
        case Kind::set:
            return first_int(command.arguments) == 0 ? Reply{} : cme(kCmeNotSupported);
        case Kind::action:
            return {};
    }
    return cme(kCmeNotSupported);
}

Reply ModemSession::cnmi(const Command& command) {
    switch (command.kind) {
        case Kind::read:
            return {{"+CNMI: 2,1,0,2,0"}};
        case Kind::test:
            return {{"+CNMI: (0-2),(0-3),(0-3),(0-2),(0,1)"}};
        default:
            return {};
    }
}

Reply ModemSession::csq(const Command& command) {
    if (command.kind == Kind::test) {
        return {{"+CSQ: (0-31,99),(0-7,99)"}};
    }
    return command.kind == Kind::action ? Reply{{"+CSQ: 20,99"}} : cme(kCmeNotSupported);
}

Reply ModemSession::csca(const Command& command) {
    if (auto not_ready = sim_not_ready()) {
        return *not_ready;
    }
    if (command.kind == Kind::read) {
        return {{"+CSCA: \"" + std::string(kSmsc) + "\",145"}};
    }
    return {};
}

Reply ModemSession::cscs(const Command& command) {
    static constexpr std::array<std::string_view, 3> kCharsets = {"GSM", "IRA", "UCS2"};
    switch (command.kind) {
        case Kind::read:
            return {{"+CSCS: \"" + m_charset + "\""}};
        case Kind::test:
            return {{"+CSCS: (\"GSM\",\"IRA\",\"UCS2\")"}};
        case Kind::set: {
            const std::string charset = unquote(command.arguments);
            if (std::find(kCharsets.begin(), kCharsets.end(), charset) == kCharsets.end()) {
                return cme(kCmeNotSupported);
            }
            m_charset = charset;
            return {};
        }
        case Kind::action:
            return cme(kCmeNotSupported);
    }
    return cme(kCmeNotSupported);
}

// TS 27.007 5.1 to 5.4, and V.250 6.1.9 for +GCAP.
Reply ModemSession::identity(const Command& command) {
    if (command.kind == Kind::test) {
        return {};
    }
    if (command.kind != Kind::action) {
        return cme(kCmeNotSupported);
    }
    if (command.name == "+CGMI") {
        return {{std::string(kManufacturer)}};
    }
    if (command.name == "+CGMM") {
        return {{std::string(kModel)}};
    }
    if (command.name == "+CGMR") {
        return {{std::string(kRevision)}};
    }
    if (command.name == "+GCAP") {
        return {{"+GCAP: +CGSM"}};
    }
    return {{std::string(kImei)}};
}

Reply ModemSession::cimi(const Command& command) {
    if (auto not_ready = sim_not_ready()) {
        return *not_ready;
    }
    return command.kind == Kind::test ? Reply{} : Reply{{std::string(kImsi)}};
}

Reply ModemSession::cfun(const Command& command) {
    switch (command.kind) {
        case Kind::read:
            return {{"+CFUN: 1"}};
        case Kind::test:
            return {{"+CFUN: (0,1,4),(0,1)"}};
        default:
            return {};
    }
}

// TS 27.005 3.2.2: one SIM store, empty, 30 places.
Reply ModemSession::cpms(const Command& command) {
    if (auto not_ready = sim_not_ready()) {
        return *not_ready;
    }
    switch (command.kind) {
        case Kind::read:
            return {{"+CPMS: \"SM\",0,30,\"SM\",0,30,\"SM\",0,30"}};
        case Kind::test:
            return {{"+CPMS: (\"SM\"),(\"SM\"),(\"SM\")"}};
        case Kind::set:
            return {{"+CPMS: 0,30,0,30,0,30"}};
        case Kind::action:
            return cme(kCmeNotSupported);
    }
    return cme(kCmeNotSupported);
}

Reply ModemSession::csms(const Command& command) {
    switch (command.kind) {
        case Kind::read:
            return {{"+CSMS: 0,1,1,1"}};
        case Kind::test:
            return {{"+CSMS: (0,1)"}};
        case Kind::set:
            return {{"+CSMS: 1,1,1"}};
        case Kind::action:
            return cme(kCmeNotSupported);
    }
    return cme(kCmeNotSupported);
}

Reply ModemSession::cops(const Command& command) {
    if (command.kind == Kind::read) {
        return {{registered() ? "+COPS: 0,0,\"otpbox\",7" : "+COPS: 0"}};
    }
    if (command.kind == Kind::test) {
        return {{"+COPS: (2,\"otpbox\",\"otpbox\",\"26201\",7),,(0-4),(0-2)"}};
    }
    return {};
}

Reply ModemSession::csmp(const Command& command) {
    return command.kind == Kind::read ? Reply{{"+CSMP: 17,167,0,0"}} : Reply{};
}

// Nothing is ever stored: listing is empty, deleting succeeds.
Reply ModemSession::storage(const Command&) {
    if (auto not_ready = sim_not_ready()) {
        return *not_ready;
    }
    return {};
}

Reply ModemSession::accept(const Command&) {
    return {};
}

// TS 27.005 3.5.1: in PDU mode the argument is the TPDU's length in octets.
Reply ModemSession::cmgs(const Command& command) {
    if (command.kind == Kind::test) {
        return {};
    }
    if (command.kind != Kind::set) {
        return {{}, "+CMS ERROR: " + std::to_string(kCmsOperationNotAllowed)};
    }
    if (auto not_ready = sim_not_ready()) {
        return *not_ready;
    }
    const auto length = parse_int(command.arguments);
    if (!length || *length < 1 || *length > static_cast<int>(kMaxTpduLength)) {
        return {{}, "+CMS ERROR: " + std::to_string(kCmsInvalidPdu)};
    }
    if (!registered()) {
        return {{}, "+CMS ERROR: " + std::to_string(kCmsNoNetwork)};
    }
    m_pdu_length = static_cast<std::size_t>(*length);
    Reply reply;
    reply.prompt = true;
    return reply;
}

}  // namespace otpbox::modemsim
