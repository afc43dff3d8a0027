#include "modem_session.hpp"

#include <algorithm>
#include <cctype>
#include <system_error>

#include "otpbox/gsm/pdu.hpp"

namespace otpbox::modemsim {
namespace {

constexpr char kCarriageReturn = '\r';
constexpr char kBackspace = 0x08;
constexpr char kCtrlZ = 0x1A;
constexpr char kEscape = 0x1B;
// V.250 5.2.1 asks for at least 40 characters; real modems take a few hundred.
constexpr std::size_t kMaxLine = 512;
// Two hex digits per octet of the longest PDU: a 12-octet SMSC field and a
// 164-octet TPDU, with room for stray whitespace.
constexpr std::size_t kMaxPduHex = 512;

// TS 27.005 3.2.5.
constexpr int kCmsInvalidPdu = 304;
constexpr int kCmsUnknown = 500;

[[nodiscard]] std::string upper(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return out;
}

// V.250 5.2.1: spaces outside quoted strings are ignored; control bytes are
// never part of a command.
[[nodiscard]] std::string clean_line(std::string_view line) {
    std::string out;
    bool quoted = false;
    for (const char c : line) {
        if (c == '"') {
            quoted = !quoted;
        }
        if ((c == ' ' && !quoted) || static_cast<unsigned char>(c) < 0x20) {
            continue;
        }
        out.push_back(c);
    }
    return out;
}

[[nodiscard]] Command parse_extended(std::string_view text) {
    Command command;
    const auto end = text.find_first_of("=?");
    command.name = upper(text.substr(0, end));
    const auto rest = end == std::string_view::npos ? std::string_view{} : text.substr(end);
    if (rest.empty()) {
        command.kind = Command::Kind::action;
    } else if (rest == "?") {
        command.kind = Command::Kind::read;
    } else if (rest == "=?") {
        command.kind = Command::Kind::test;
    } else if (rest.starts_with('=')) {
        command.kind = Command::Kind::set;
        command.arguments = std::string(rest.substr(1));
    } else {
        command.name.clear();  // "+CSQ?x": not a command
    }
    return command;
}

// The next extended command up to an unquoted ';'.
[[nodiscard]] std::string_view take_extended(std::string_view& rest) {
    bool quoted = false;
    std::size_t i = 0;
    for (; i < rest.size(); ++i) {
        if (rest[i] == '"') {
            quoted = !quoted;
        } else if (rest[i] == ';' && !quoted) {
            break;
        }
    }
    const auto text = rest.substr(0, i);
    rest.remove_prefix(std::min(i + 1, rest.size()));
    return text;
}

[[nodiscard]] std::string hex_only(std::string_view text) {
    std::string out;
    for (const char c : text) {
        if (std::isxdigit(static_cast<unsigned char>(c))) {
            out.push_back(c);
        } else if (!std::isspace(static_cast<unsigned char>(c))) {
            return {};
        }
    }
    return out;
}

}  // namespace

ModemSession::ModemSession(const SimOptions& options, Outbox& outbox)
    : m_options(options),
      m_outbox(outbox),
      m_random(options.seed.value_or(std::random_device{}())),
      m_echo(options.echo),
      m_sim_ready(!options.sim_pin) {}

std::vector<Output> ModemSession::feed(char byte) {
    return m_mode == Mode::pdu ? feed_pdu(byte) : feed_command(byte);
}

std::vector<Output> ModemSession::feed_command(char byte) {
    std::vector<Output> out;
    if (m_echo) {
        out.push_back({std::string(1, byte)});
    }
    if (byte == kCarriageReturn) {
        auto replies = end_of_line();
        out.insert(out.end(), replies.begin(), replies.end());
    } else if (byte == kBackspace) {
        if (!m_line.empty()) {
            m_line.pop_back();
        }
    } else if (m_line.size() < kMaxLine) {
        m_line.push_back(byte);
    } else {
        m_line_overflow = true;
    }
    return out;
}

std::vector<Output> ModemSession::end_of_line() {
    const std::string line = clean_line(m_line);
    const bool overflow = m_line_overflow;
    m_line.clear();
    m_line_overflow = false;
    // V.250 5.2.1: anything that does not start with "AT" is not a command
    // line, and a modem stays silent about it.
    if (line.size() < 2 || upper(line.substr(0, 2)) != "AT") {
        return {};
    }
    const Reply reply = overflow ? Reply{{}, "ERROR"} : run_line(std::string_view(line).substr(2));
    if (!reply.prompt) {
        return {{format(reply)}};
    }
    m_mode = Mode::pdu;
    m_pdu.clear();
    if (m_options.no_prompt) {
        return {};
    }
    return {{m_options.bare_prompt ? "\r\n>" : "\r\n> "}};
}

std::vector<Output> ModemSession::feed_pdu(char byte) {
    if (byte == kEscape) {
        // TS 27.005 3.5.1: ESC cancels the message; nothing is sent.
        m_mode = Mode::command;
        return {{format(Reply{})}};
    }
    if (byte == kCtrlZ) {
        m_mode = Mode::command;
        return submit_pdu();
    }
    std::vector<Output> out;
    if (m_echo) {
        out.push_back({std::string(1, byte)});
    }
    if (m_pdu.size() <= kMaxPduHex) {
        m_pdu.push_back(byte);
    }
    return out;
}

std::vector<Output> ModemSession::submit_pdu() {
    const std::string hex = hex_only(m_pdu);
    m_pdu.clear();
    if (hex.empty() || hex.size() > kMaxPduHex) {
        return {{format({{}, "+CMS ERROR: " + std::to_string(kCmsInvalidPdu)})}};
    }
    try {
        return accept_pdu(hex);
    } catch (const gsm::PduError&) {
        return {{format({{}, "+CMS ERROR: " + std::to_string(kCmsInvalidPdu)})}};
    } catch (const std::system_error&) {
        return {{format({{}, "+CMS ERROR: " + std::to_string(kCmsUnknown)})}};
    }
}

std::vector<Output> ModemSession::accept_pdu(const std::string& hex) {
    const auto decoded = gsm::decode_submit(hex);
    // TS 27.005 3.5.1: <length> counts the TPDU's octets, not the SMSC field's.
    const std::size_t smsc_octets = std::stoul(hex.substr(0, 2), nullptr, 16) + 1;
    if (hex.size() / 2 != smsc_octets + m_pdu_length) {
        return {{format({{}, "+CMS ERROR: " + std::to_string(kCmsInvalidPdu)})}};
    }

    std::vector<Output> out;
    if (m_options.urc_during_send) {
        out.push_back({"\r\n^RSSI: 15\r\n"});
    }
    if (const auto error = injected_error()) {
        out.push_back(
            {format({{}, "+CMS ERROR: " + std::to_string(*error)}), m_options.latency, true});
        return out;
    }

    if (auto message = m_assembler.add(decoded, hex)) {
        m_outbox.append(*message);
    }
    const std::uint8_t reference = m_next_reference++;
    ++m_sent;
    const std::string answer = "+CMGS: " + std::to_string(reference);
    // The message has gone; only the final result is lost, as when the line
    // drops or noise takes it.
    out.push_back(
        {lose_ok() ? "\r\n" + answer + "\r\n" : format({{answer}}), m_options.latency, true});

    if (decoded.status_report && m_options.status_reports) {
        const auto report =
            gsm::encode_status_report({reference, decoded.to, m_options.report_status, {}});
        const std::string length = std::to_string(report.size() / 2 - 1);
        out.push_back({"\r\n+CDS: " + length + "\r\n" + report + "\r\n",
                       m_options.latency + m_options.report_delay});
    }
    return out;
}

std::optional<int> ModemSession::injected_error() {
    std::uniform_real_distribution<double> chance(0.0, 1.0);
    for (const auto& rate : m_options.error_rates) {
        if (chance(m_random) < rate.probability) {
            return rate.code;
        }
    }
    return std::nullopt;
}

bool ModemSession::lose_ok() {
    std::uniform_real_distribution<double> chance(0.0, 1.0);
    return m_options.lost_ok_rate > 0.0 && chance(m_random) < m_options.lost_ok_rate;
}

Reply ModemSession::run_line(std::string_view rest) {
    Reply combined;
    while (!rest.empty()) {
        const bool extended = rest.front() == '+' || rest.front() == '^';
        Reply reply = extended ? run_extended(take_extended(rest)) : run_basic(rest);
        combined.lines.insert(combined.lines.end(), reply.lines.begin(), reply.lines.end());
        combined.final_result = reply.final_result;
        combined.prompt = reply.prompt;
        // V.250 5.2.1: an error ends the line; AT+CMGS must be the last command.
        if (reply.final_result != "OK" || reply.prompt) {
            break;
        }
    }
    return combined;
}

Reply ModemSession::run_extended(std::string_view text) {
    const Command command = parse_extended(text);
    const Handler handler = handler_for(command.name);
    if (handler == nullptr) {
        return cme(4);
    }
    return (this->*handler)(command);
}

std::string ModemSession::format(const Reply& reply) const {
    std::string text;
    for (const auto& line : reply.lines) {
        text += "\r\n" + line + "\r\n";
    }
    return text + "\r\n" + reply.final_result + "\r\n";
}

bool ModemSession::between_commands() const {
    return m_mode == Mode::command && std::all_of(m_line.begin(), m_line.end(), [](char c) {
               return c == ' ' || static_cast<unsigned char>(c) < 0x20;
           });
}

bool ModemSession::hangup_due() const {
    return m_options.hangup_after && m_sent >= *m_options.hangup_after;
}

std::string ModemSession::noise_line() {
    const std::string creg = registered() ? "+CREG: 1" : "+CREG: 2";
    const std::string lines[] = {"RING", "^RSSI: 15", creg};
    std::uniform_int_distribution<std::size_t> pick(0, std::size(lines) - 1);
    return "\r\n" + lines[pick(m_random)] + "\r\n";
}

}  // namespace otpbox::modemsim
