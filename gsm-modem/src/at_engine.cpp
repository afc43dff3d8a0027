#include "otpbox/gsm/at_engine.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <utility>

#include "at_port.hpp"
#include "otpbox/gsm/at_error.hpp"

namespace otpbox::gsm {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr char kCtrlZ = '\x1a';
constexpr char kEscape = '\x1b';
constexpr std::string_view kCmgsPrefix = "+CMGS:";

[[nodiscard]] bool starts_with(std::string_view text, std::string_view prefix) noexcept {
    return text.substr(0, prefix.size()) == prefix;
}

[[nodiscard]] std::string_view trim(std::string_view text) noexcept {
    while (!text.empty() && text.front() == ' ') {
        text.remove_prefix(1);
    }
    while (!text.empty() && text.back() == ' ') {
        text.remove_suffix(1);
    }
    return text;
}

[[nodiscard]] bool is_hex(std::string_view text) noexcept {
    return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
    });
}

[[nodiscard]] std::optional<int> number_after(std::string_view line, std::string_view prefix) {
    if (!starts_with(line, prefix)) {
        return std::nullopt;
    }
    const auto digits = trim(line.substr(prefix.size()));
    int value = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc() || end != digits.data() + digits.size()) {
        return std::nullopt;
    }
    return value;
}

// TS 27.005 3.5.1: "+CMGS: <mr>[,<ackpdu>]"; the network's ack PDU follows
// when the modem was told to pass it on.
[[nodiscard]] std::optional<std::uint8_t> message_reference(const AtResponse& response) {
    for (const auto& line : response.lines) {
        const auto reference = number_after(line.substr(0, line.find(',')), kCmgsPrefix);
        if (reference && *reference >= 0 && *reference <= 255) {
            return static_cast<std::uint8_t>(*reference);
        }
    }
    return std::nullopt;
}

// The prefix of the information response a command gives: "AT+CREG?" ->
// "+CREG:" (TS 27.007 4.1: responses repeat the command's name).
[[nodiscard]] std::string response_prefix(std::string_view command) {
    if (!starts_with(command, "AT") || command.size() < 3) {
        return {};
    }
    const auto name = command.substr(2);
    if (name.front() != '+' && name.front() != '^') {
        return {};
    }
    return std::string(name.substr(0, name.find_first_of("?=;"))) + ":";
}

// A final result code ends the command: OK, ERROR, +CME ERROR (TS 27.007
// 9.2), +CMS ERROR (TS 27.005 3.2.5). Returns nullopt for other lines and an
// empty code for OK.
[[nodiscard]] std::optional<std::error_code> final_result(std::string_view line) {
    if (line == "OK") {
        return std::error_code();
    }
    if (line == "ERROR" || line == "NO CARRIER" || line == "COMMAND NOT SUPPORT") {
        return make_error_code(AtErrc::error);
    }
    if (starts_with(line, "+CME ERROR:")) {
        const auto code = number_after(line, "+CME ERROR:");
        return code ? cme_error(*code) : make_error_code(AtErrc::error);
    }
    if (starts_with(line, "+CMS ERROR:")) {
        const auto code = number_after(line, "+CMS ERROR:");
        return code ? cms_error(*code) : make_error_code(AtErrc::error);
    }
    return std::nullopt;
}

[[nodiscard]] bool carries_pdu(std::string_view urc) noexcept {
    return starts_with(urc, "+CDS:") || starts_with(urc, "+CMT:");
}

// The line after a +CDS or +CMT in PDU mode (TS 27.005 3.4.1): the SMSC
// address (1 to 12 octets) and then the <length> octets of the TPDU, in
// hex. A line of digits that cannot be that (an IMSI answering a command
// after a report whose PDU line was lost) is not taken for it.
[[nodiscard]] bool fits_as_pdu(std::string_view urc, std::string_view line) {
    constexpr std::size_t kMaxSmscOctets = 12;
    if (!is_hex(line) || line.size() % 2 != 0) {
        return false;
    }
    const auto comma = urc.rfind(',');
    const auto length = comma == std::string_view::npos
                            ? number_after(urc, urc.substr(0, urc.find(':') + 1))
                            : number_after(urc.substr(comma), ",");
    if (!length || *length < 0) {
        return true;  // no length to hold it against
    }
    const auto octets = line.size() / 2;
    const auto tpdu = static_cast<std::size_t>(*length);
    return octets > tpdu && octets <= tpdu + kMaxSmscOctets;
}

}  // namespace

bool is_known_urc(std::string_view line) noexcept {
    static constexpr std::array<std::string_view, 12> kPrefixes{
        "+CMTI:",  "+CMT:", "+CDS:",  "+CDSI:", "+CREG:", "+CEREG:",
        "+CGREG:", "+CBM:", "+CUSD:", "+CIEV:", "RING",   "^"};
    return std::any_of(kPrefixes.begin(), kPrefixes.end(),
                       [line](std::string_view prefix) { return starts_with(line, prefix); });
}

AtEngine::AtEngine(const SerialSettings& settings)
    : m_port(std::make_unique<SerialPort>(settings)) {}

AtEngine::~AtEngine() = default;

AtResponse AtEngine::command(std::string_view command, std::chrono::milliseconds timeout) {
    return run(command, command, timeout);
}

AtResponse AtEngine::secret_command(std::string_view command, std::string_view name,
                                    std::chrono::milliseconds timeout) {
    return run(command, name, timeout);
}

AtResponse AtEngine::run(std::string_view command, std::string_view name,
                         std::chrono::milliseconds timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    m_expected_prefix = response_prefix(command);
    write(std::string(command) + "\r");
    AtResponse response;
    await_final(command, name, deadline, response);
    return response;
}

std::uint8_t AtEngine::send_pdu(std::size_t tpdu_length, std::string_view hex,
                                std::chrono::milliseconds prompt_timeout,
                                std::chrono::milliseconds send_timeout) {
    m_final_result_missing.reset();
    const auto command = "AT+CMGS=" + std::to_string(tpdu_length);
    m_expected_prefix = std::string(kCmgsPrefix);
    write(command + "\r");
    wait_for_prompt(command, SteadyClock::now() + prompt_timeout);

    write(std::string(hex) + kCtrlZ);
    AtResponse response;
    try {
        await_final(hex, "AT+CMGS", SteadyClock::now() + send_timeout, response);
    } catch (const AtError& error) {
        // "+CMGS: <mr>" came, so the service centre took the SMS: a final
        // result that never comes after it (the line dropped, a timeout,
        // noise) or that contradicts it does not make it unsent, and failing
        // here would send it a second time.
        if (const auto reference = message_reference(response)) {
            m_final_result_missing = error.what();
            return *reference;
        }
        throw;
    }
    if (const auto reference = message_reference(response)) {
        return *reference;
    }
    throw AtError(make_error_code(AtErrc::bad_response), "AT+CMGS: OK without a reference");
}

// TS 27.005 3.5.1: the modem answers AT+CMGS with "> " before it takes the
// PDU. Without it, ESC aborts the command so the modem does not swallow the
// next command as PDU text.
void AtEngine::wait_for_prompt(std::string_view echo, SteadyClock::time_point deadline) {
    for (;;) {
        const auto token = next_token(deadline, true);
        if (!token) {
            write(std::string(1, kEscape));
            listen(std::chrono::milliseconds(300));
            throw AtError(make_error_code(AtErrc::no_prompt), "send");
        }
        if (token->prompt) {
            return;
        }
        if (token->line == echo) {
            continue;
        }
        if (const auto result = final_result(token->line)) {
            throw AtError(*result ? *result : make_error_code(AtErrc::bad_response),
                          "AT+CMGS: " + token->line);
        }
        keep_urc(token->line);
    }
}

void AtEngine::await_final(std::string_view echo, std::string_view name,
                           SteadyClock::time_point deadline, AtResponse& response) {
    for (;;) {
        const auto token = next_token(deadline, false);
        if (!token) {
            // A late answer to this command could still be taken for the next
            // one's; the modem worker resets the modem after a timeout.
            throw AtError(make_error_code(AtErrc::timeout), std::string(name) + ": timeout");
        }
        const auto& line = token->line;
        if (line == echo) {
            continue;
        }
        if (const auto result = final_result(line)) {
            if (*result) {
                // std::system_error puts the code's message after the name.
                throw AtError(*result, std::string(name));
            }
            return;
        }
        if (!m_expected_prefix.empty() && starts_with(line, m_expected_prefix)) {
            response.lines.push_back(line);
        } else {
            keep_urc(line);
        }
    }
}

void AtEngine::listen(std::chrono::milliseconds duration) {
    const auto deadline = SteadyClock::now() + duration;
    m_expected_prefix.clear();
    while (const auto token = next_token(deadline, false)) {
        // A late OK or ERROR of a cancelled command is dropped with the rest.
        if (!final_result(token->line)) {
            keep_urc(token->line);
        }
    }
}

void AtEngine::write_raw(std::string_view bytes) {
    write(bytes);
}

std::vector<Urc> AtEngine::take_urcs() {
    // A listen may end between a +CDS line and its PDU line (TS 27.005
    // 3.4.1: the PDU follows on a line of its own); the report would be lost.
    std::optional<Urc> waiting;
    if (m_urc_wants_pdu && !m_urcs.empty()) {
        waiting = std::move(m_urcs.back());
        m_urcs.pop_back();
    }
    auto urcs = std::exchange(m_urcs, {});
    if (waiting) {
        m_urcs.push_back(std::move(*waiting));
    }
    return urcs;
}

void AtEngine::write(std::string_view bytes) {
    m_port->write(bytes, SteadyClock::now() + std::chrono::seconds(5));
}

std::optional<AtEngine::Token> AtEngine::next_token(SteadyClock::time_point deadline,
                                                    bool want_prompt) {
    for (;;) {
        if (auto line = take_line()) {
            if (std::exchange(m_urc_wants_pdu, false) && !m_urcs.empty() &&
                fits_as_pdu(m_urcs.back().line, *line)) {
                m_urcs.back().pdu = std::move(*line);
                continue;
            }
            if (want_prompt && trim(*line) == ">") {
                return Token{true, {}};
            }
            return Token{false, std::move(*line)};
        }
        // The prompt has no line end; a bare ">" is taken as well.
        if (want_prompt && trim(m_pending) == ">") {
            m_pending.clear();
            return Token{true, {}};
        }
        if (SteadyClock::now() >= deadline) {
            return std::nullopt;
        }
        std::array<char, 512> buffer{};
        const auto received = m_port->read_some(buffer, deadline);
        append(std::string_view(buffer.data(), received));
    }
}

// Keeps printable ASCII and line ends only: binary noise on the line must not
// reach the parser. A line longer than kMaxLine is dropped whole, up to its
// end: its tail taken as a line of its own could read "OK" or "+CMGS: 5".
void AtEngine::append(std::string_view bytes) {
    for (const char c : bytes) {
        const bool printable = c >= 0x20 && c <= 0x7e;
        if (!printable && c != '\r' && c != '\n') {
            continue;
        }
        if (c == '\r' || c == '\n') {
            const auto line = trim(m_pending);
            if (!line.empty() && !m_dropping_line) {
                m_lines.emplace_back(line);
            }
            m_pending.clear();
            m_dropping_line = false;
        } else if (m_pending.size() >= kMaxLine) {
            m_pending.clear();
            m_dropping_line = true;
        } else if (!m_dropping_line) {
            m_pending.push_back(c);
        }
    }
}

std::optional<std::string> AtEngine::take_line() {
    if (m_lines.empty()) {
        return std::nullopt;
    }
    auto line = std::move(m_lines.front());
    m_lines.pop_front();
    return line;
}

void AtEngine::keep_urc(std::string line) {
    if (m_urcs.size() >= kMaxUrcs) {
        m_urcs.erase(m_urcs.begin());
    }
    m_urc_wants_pdu = carries_pdu(line);
    m_urcs.push_back(Urc{std::move(line), std::nullopt});
}

}  // namespace otpbox::gsm
