#pragma once

// One GSM modem: opening and initialising it (SIM PIN, registration, PDU
// mode, delivery reports as +CDS), sending an SMS part by part with AT+CMGS,
// polling signal and registration, and collecting delivery reports.
// Owned by one worker thread.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "otpbox/gsm/at_engine.hpp"
#include "otpbox/gsm/pdu.hpp"

namespace otpbox::gsm {

struct ModemConfig {
    std::string name;              // "modem0", used in health and metrics
    std::filesystem::path device;  // serial device or the simulator's link
    unsigned baud = 115200;
    bool hardware_flow_control = false;
    std::optional<std::string> sim_pin;  // never logged
    std::chrono::milliseconds command_timeout{5000};
    std::chrono::milliseconds send_timeout{60000};  // from AT+CMGS to +CMGS
    std::chrono::seconds poll_interval{30};         // AT+CSQ and registration
    std::optional<std::chrono::minutes> validity = std::chrono::minutes(10);
    bool reset_with_cfun = false;                  // AT+CFUN=1,1 when the modem stops answering
    std::chrono::seconds registration_wait{60};    // how long initialisation waits for a network
    std::chrono::milliseconds retry_delay{30000};  // after a temporary refusal, times the attempts
};

struct ModemHealth {
    std::string name;
    std::string state;         // "ready", "initialising", "failed", "stopped", ...
    std::string registration;  // "home", "roaming", "searching", "denied", "unknown"
    int signal_rssi = 99;      // AT+CSQ's <rssi>, 99 = unknown
    std::size_t sent = 0;
    std::size_t failed = 0;  // refused, or cut off after a part was sent; once per SMS
    std::string last_error;  // one line for an operator
    std::size_t resets = 0;  // resets after a +CMGS whose final result never came
    std::string last_reset;  // why the last of those resets happened, one line
};

// <stat> of +CREG / +CEREG (TS 27.007 7.2, 10.1.22).
enum class Registration { unknown, not_searching, home, searching, denied, roaming };

[[nodiscard]] std::string_view registration_name(Registration registration) noexcept;

// Reads "+CREG: <n>,<stat>[,...]" (the answer to AT+CREG?) and the URC form
// "+CREG: <stat>[,<lac>,<ci>...]", likewise +CEREG and +CGREG.
[[nodiscard]] std::optional<Registration> parse_registration(std::string_view line);

// What a failed send means for the message and the modem.
enum class SendFault {
    modem,      // the modem or its SIM or network failed: take the modem out, try another
    temporary,  // the network refused for now: try again later
    permanent,  // the destination or the message is refused: fail the message
};

[[nodiscard]] SendFault classify_send_error(const std::error_code& code) noexcept;

class Modem {
  public:
    using PartSent =
        std::function<void(std::size_t part, std::size_t parts, std::uint8_t reference)>;

    explicit Modem(ModemConfig config);
    ~Modem();
    Modem(const Modem&) = delete;
    Modem& operator=(const Modem&) = delete;

    // Opens the port (closing it first when open) and initialises the modem.
    // Throws AtError; a SIM that needs its PUK or refused the PIN gives
    // AtErrc::sim_locked.
    void open();
    void close() noexcept;
    [[nodiscard]] bool is_open() const noexcept { return m_engine != nullptr; }

    // Sends every part of the SMS; part_sent runs after each +CMGS so the
    // caller records it before the next part goes out. Throws AtError. A
    // +CMGS whose final result never came counts as sent, and then the modem
    // is reset (closed; open() starts again) before anything else is sent;
    // a next part is not sent, and send throws AtError(timeout).
    void send(std::string_view to, std::string_view text, const SubmitOptions& options,
              const PartSent& part_sent);

    // Why the last send() reset the modem after a +CMGS whose final result
    // never came, in one line for an operator (no number, no text); nullopt
    // when it did not.
    [[nodiscard]] const std::optional<std::string>& send_reset() const noexcept {
        return m_send_reset;
    }

    // AT+CSQ and registration. Throws AtError (not_registered when lost).
    void poll();

    // Reads what arrives for up to the duration (delivery reports, URCs).
    void listen(std::chrono::milliseconds duration);

    [[nodiscard]] std::vector<StatusReport> take_status_reports();

    // ESC and Ctrl-Z to leave any half-typed input, AT+CFUN=1,1 when
    // configured, then the port is closed and registration and signal are
    // unknown; open() starts again. Delivery reports heard meanwhile are kept.
    void reset() noexcept;

    [[nodiscard]] const ModemConfig& config() const noexcept { return m_config; }
    [[nodiscard]] Registration registration() const noexcept { return m_registration; }
    [[nodiscard]] int signal_rssi() const noexcept { return m_rssi; }

  private:
    void drain_stale_input();
    void wait_until_answering();
    void unlock_sim();
    void wait_for_sim_ready();
    void wait_for_registration();
    void check_registration();
    void handle_urcs();
    AtResponse command(std::string_view text);
    AtEngine& engine();

    ModemConfig m_config;
    std::unique_ptr<AtEngine> m_engine;
    Registration m_registration = Registration::unknown;
    int m_rssi = 99;
    std::vector<StatusReport> m_reports;
    std::optional<std::string> m_send_reset;
};

}  // namespace otpbox::gsm
