#include "otpbox/gsm/modem.hpp"

#include <charconv>
#include <thread>
#include <utility>

#include "otpbox/gsm/at_error.hpp"

namespace otpbox::gsm {
namespace {

constexpr int kAnswerTries = 3;
constexpr auto kSimReadyWait = std::chrono::seconds(10);
constexpr auto kStepPause = std::chrono::milliseconds(500);
constexpr auto kDrainTime = std::chrono::milliseconds(300);

[[nodiscard]] bool is_cme(const AtError& error, int code) noexcept {
    return error.code() == cme_error(code);
}

[[nodiscard]] bool usable(Registration registration) noexcept {
    return registration == Registration::home || registration == Registration::roaming;
}

[[noreturn]] void throw_sim_locked(const std::string& why) {
    throw AtError(make_error_code(AtErrc::sim_locked), why);
}

// "+CPIN: SIM PIN" -> "SIM PIN" (TS 27.007 8.3).
[[nodiscard]] std::string pin_state(const AtResponse& response) {
    for (const auto& line : response.lines) {
        auto state = std::string_view(line).substr(std::string_view("+CPIN:").size());
        while (!state.empty() && state.front() == ' ') {
            state.remove_prefix(1);
        }
        return std::string(state);
    }
    return {};
}

// What health and the log say when a +CMGS came without its final result;
// cause is the engine's, which never holds the PDU.
[[nodiscard]] std::string send_reset_reason(std::string_view cause, std::size_t part,
                                            std::size_t parts) {
    std::string reason = "AT+CMGS: no final result after the reference";
    if (parts > 1) {
        reason += " of part " + std::to_string(part + 1) + " of " + std::to_string(parts);
    }
    reason += " (" + std::string(cause) + "); ";
    reason += part + 1 == parts ? "the SMS counts as sent and the modem was reset"
                                : "the modem was reset and the other parts were not sent";
    return reason;
}

}  // namespace

Modem::Modem(ModemConfig config) : m_config(std::move(config)) {}

Modem::~Modem() = default;

void Modem::open() {
    // The port's lock belongs to the open port: the old one goes first, or
    // the new one would find it taken by this very modem.
    close();
    m_engine = std::make_unique<AtEngine>(
        SerialSettings{m_config.device, m_config.baud, m_config.hardware_flow_control});
    m_registration = Registration::unknown;
    m_rssi = 99;
    try {
        drain_stale_input();
        wait_until_answering();
        command("ATE0");
        command("AT+CMEE=1");
        unlock_sim();
        wait_for_registration();
        // TS 27.005 3.2.3 PDU mode; 3.4.1 <mt>=1 stores new SMS and says +CMTI,
        // <ds>=1 gives status reports as +CDS.
        command("AT+CMGF=0");
        command("AT+CNMI=2,1,0,1,0");
        poll();
    } catch (...) {
        close();
        throw;
    }
}

void Modem::close() noexcept {
    m_engine.reset();
}

// A modem left by a process that died mid-send may still wait for PDU text
// or owe the answer to a command no one waits for. ESC ends PDU input
// without sending (TS 27.005 3.5.1); what arrives meanwhile is dropped so a
// stale OK is not taken for the answer to our first command. A delivery
// report is no answer: it is kept, like one heard at any other time.
void Modem::drain_stale_input() {
    engine().write_raw("\x1b");
    engine().listen(kDrainTime);
    handle_urcs();
}

void Modem::wait_until_answering() {
    for (int attempt = 1;; ++attempt) {
        try {
            command("AT");
            return;
        } catch (const AtError& error) {
            if (attempt >= kAnswerTries || error.code() == make_error_code(AtErrc::port_closed)) {
                throw;
            }
        }
    }
}

// TS 27.007 8.3. A refused PIN or a PUK request stops here: a second guess
// would bring the SIM closer to its PUK lock.
void Modem::unlock_sim() {
    const auto state = pin_state(command("AT+CPIN?"));
    if (state == "READY") {
        return;
    }
    if (state.empty()) {
        throw AtError(make_error_code(AtErrc::bad_response), "AT+CPIN?: OK without +CPIN");
    }
    if (state == "SIM PUK") {
        throw_sim_locked("the SIM asks for its PUK");
    }
    if (state != "SIM PIN") {
        throw_sim_locked("the SIM asks for " + state + ", which otpbox cannot give");
    }
    if (!m_config.sim_pin) {
        throw_sim_locked("the SIM asks for a PIN and none is stored");
    }
    try {
        engine().secret_command("AT+CPIN=\"" + *m_config.sim_pin + "\"", "AT+CPIN=<pin>",
                                m_config.command_timeout);
    } catch (const AtError& error) {
        throw_sim_locked("the SIM refused the stored PIN (" + error.code().message() +
                         "); not tried again to keep the SIM from locking");
    }
    wait_for_sim_ready();
}

// After the PIN the SIM is busy reading its files for a while and answers
// +CME ERROR: 14 meanwhile.
void Modem::wait_for_sim_ready() {
    const auto deadline = std::chrono::steady_clock::now() + kSimReadyWait;
    for (;;) {
        try {
            const auto state = pin_state(command("AT+CPIN?"));
            if (state == "READY") {
                return;
            }
            throw_sim_locked("the SIM still asks for " + state +
                             " after the stored PIN; not tried again to keep the SIM from locking");
        } catch (const AtError& error) {
            if (!is_cme(error, 14) || std::chrono::steady_clock::now() >= deadline) {
                throw;
            }
        }
        std::this_thread::sleep_for(kStepPause);
    }
}

void Modem::wait_for_registration() {
    const auto deadline = std::chrono::steady_clock::now() + m_config.registration_wait;
    for (;;) {
        try {
            check_registration();
            return;
        } catch (const AtError& error) {
            if (error.code() != make_error_code(AtErrc::not_registered) ||
                std::chrono::steady_clock::now() >= deadline) {
                throw;
            }
        }
        listen(std::chrono::seconds(1));
    }
}

// Circuit-switched (+CREG) or EPS (+CEREG) registration, home or roaming,
// lets SMS through; a modem without LTE answers AT+CEREG? with ERROR.
void Modem::check_registration() {
    for (const char* query : {"AT+CREG?", "AT+CEREG?"}) {
        try {
            for (const auto& line : command(query).lines) {
                if (const auto registration = parse_registration(line)) {
                    m_registration = *registration;
                }
            }
        } catch (const AtError& error) {
            if (error.code().category() != cme_category() &&
                error.code() != make_error_code(AtErrc::error)) {
                throw;
            }
        }
        if (usable(m_registration)) {
            return;
        }
    }
    throw AtError(make_error_code(AtErrc::not_registered),
                  "registration: " + std::string(registration_name(m_registration)));
}

void Modem::poll() {
    for (const auto& line : command("AT+CSQ").lines) {
        // "+CSQ: <rssi>,<ber>" (TS 27.007 8.5)
        const auto digits = std::string_view(line).substr(std::string_view("+CSQ:").size());
        const auto start = digits.find_first_not_of(' ');
        if (start != std::string_view::npos) {
            int rssi = 99;
            std::from_chars(digits.data() + start, digits.data() + digits.size(), rssi);
            m_rssi = rssi;
        }
    }
    check_registration();
    handle_urcs();
}

void Modem::send(std::string_view to, std::string_view text, const SubmitOptions& options,
                 const PartSent& part_sent) {
    m_send_reset.reset();
    const auto parts = encode_submit(to, text, options);
    for (std::size_t index = 0; index < parts.size(); ++index) {
        const auto reference = engine().send_pdu(parts[index].tpdu_length, parts[index].hex,
                                                 m_config.command_timeout, m_config.send_timeout);
        part_sent(index, parts.size(), reference);
        if (const auto missing = engine().final_result_missing()) {
            // The part has gone, but a late OK could answer the next command:
            // the modem starts over, and a next part is not sent on it.
            const bool last = index + 1 == parts.size();
            m_send_reset = send_reset_reason(*missing, index, parts.size());
            handle_urcs();
            reset();
            if (!last) {
                throw AtError(make_error_code(AtErrc::timeout), "AT+CMGS");
            }
            return;
        }
    }
    handle_urcs();
}

void Modem::listen(std::chrono::milliseconds duration) {
    engine().listen(duration);
    handle_urcs();
}

std::vector<StatusReport> Modem::take_status_reports() {
    return std::exchange(m_reports, {});
}

void Modem::handle_urcs() {
    for (auto& urc : engine().take_urcs()) {
        if (urc.line.starts_with("+CDS:") && urc.pdu) {
            try {
                m_reports.push_back(decode_status_report(*urc.pdu));
            } catch (const PduError&) {
                // A report we cannot read matches no message; dropping it
                // leaves that message "sent".
            }
        } else if (const auto registration = parse_registration(urc.line)) {
            m_registration = *registration;
        }
    }
}

void Modem::reset() noexcept {
    if (!m_engine) {
        return;
    }
    try {
        // ESC leaves a half-typed PDU (TS 27.005 3.5.1), Ctrl-Z ends one.
        m_engine->write_raw("\x1b\x1a\r");
        m_engine->listen(std::chrono::milliseconds(500));
        // A delivery report heard meanwhile would otherwise close with the port.
        handle_urcs();
        if (m_config.reset_with_cfun) {
            // TS 27.007 8.2: full functionality after a reset of the MT.
            m_engine->command("AT+CFUN=1,1", m_config.command_timeout);
            handle_urcs();
        }
    } catch (...) {
        // The port is reopened anyway.
    }
    close();
    // A modem taken out knows nothing of the network until it is up again.
    m_registration = Registration::unknown;
    m_rssi = 99;
}

AtResponse Modem::command(std::string_view text) {
    return engine().command(text, m_config.command_timeout);
}

AtEngine& Modem::engine() {
    if (!m_engine) {
        throw AtError(make_error_code(AtErrc::port_closed), m_config.name + ": not open");
    }
    return *m_engine;
}

}  // namespace otpbox::gsm
