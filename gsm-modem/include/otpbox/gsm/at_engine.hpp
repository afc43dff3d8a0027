#pragma once

// The AT command dialogue on one serial port (3GPP TS 27.007, TS 27.005):
// one command in flight, every wait bounded by a deadline that unsolicited
// lines do not extend, and unsolicited result codes set aside wherever they
// arrive. Not thread-safe: one modem worker thread owns an engine.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace otpbox::gsm {

class SerialPort;

struct SerialSettings {
    std::filesystem::path device;
    unsigned baud = 115200;
    bool hardware_flow_control = false;  // RTS/CTS
};

// An unsolicited result code; +CDS and +CMT carry their PDU on the next line.
struct Urc {
    std::string line;
    std::optional<std::string> pdu;
};

struct AtResponse {
    std::vector<std::string> lines;  // information lines between command and OK
};

class AtEngine {
  public:
    static constexpr std::size_t kMaxLine = 1024;  // longer lines are dropped up to their end
    static constexpr std::size_t kMaxUrcs = 256;   // oldest dropped beyond this

    // Opens the port 8N1 at the given speed. Throws AtError(port_closed).
    explicit AtEngine(const SerialSettings& settings);
    ~AtEngine();
    AtEngine(const AtEngine&) = delete;
    AtEngine& operator=(const AtEngine&) = delete;

    // Sends "command\r" and waits for the final result. Throws AtError with
    // AtErrc::timeout, AtErrc::error, a CME or CMS error code.
    AtResponse command(std::string_view command, std::chrono::milliseconds timeout);

    // As command(), with a name for errors in place of the command's text
    // (for AT+CPIN="...").
    AtResponse secret_command(std::string_view command, std::string_view name,
                              std::chrono::milliseconds timeout);

    // TS 27.005 3.5.1 in PDU mode: AT+CMGS=<length>, the prompt, the PDU in hex
    // and Ctrl-Z, then +CMGS: <mr> and OK. Returns the message reference, also
    // when the OK after it never comes (the SMS has gone). On a missing prompt
    // it cancels with ESC and throws AtError(no_prompt).
    std::uint8_t send_pdu(std::size_t tpdu_length, std::string_view hex,
                          std::chrono::milliseconds prompt_timeout,
                          std::chrono::milliseconds send_timeout);

    // Set when the last send_pdu returned a reference whose final result
    // never came: a late OK could then be taken for the next command's. It
    // says what came instead ("AT+CMGS: timeout: ...", "read: End of file:
    // ..."), never the PDU.
    [[nodiscard]] const std::optional<std::string>& final_result_missing() const noexcept {
        return m_final_result_missing;
    }

    // Reads whatever arrives for up to the duration, setting URCs aside.
    void listen(std::chrono::milliseconds duration);

    // Writes bytes as they are (ESC, Ctrl-Z), for cancelling and resets.
    void write_raw(std::string_view bytes);

    // The URCs set aside so far, less a +CDS or +CMT whose PDU line has not
    // arrived yet: that one stays until its PDU comes.
    [[nodiscard]] std::vector<Urc> take_urcs();

  private:
    struct Token {
        bool prompt = false;
        std::string line;
    };

    std::optional<Token> next_token(std::chrono::steady_clock::time_point deadline,
                                    bool want_prompt);
    std::optional<std::string> take_line();
    void append(std::string_view bytes);
    void wait_for_prompt(std::string_view echo, std::chrono::steady_clock::time_point deadline);
    AtResponse run(std::string_view command, std::string_view name,
                   std::chrono::milliseconds timeout);
    // Adds the information lines to `response` as they come, so that a
    // caller still has them when the final result never arrives.
    void await_final(std::string_view echo, std::string_view name,
                     std::chrono::steady_clock::time_point deadline, AtResponse& response);
    void keep_urc(std::string line);
    void write(std::string_view bytes);

    std::unique_ptr<SerialPort> m_port;
    std::string m_pending;         // bytes after the last line end
    bool m_dropping_line = false;  // the line being read grew past kMaxLine
    std::deque<std::string> m_lines;
    std::vector<Urc> m_urcs;
    bool m_urc_wants_pdu = false;
    std::string m_expected_prefix;  // "+CREG:" while AT+CREG? runs
    std::optional<std::string> m_final_result_missing;
};

// True for the unsolicited result codes this project knows (+CMTI, +CDS,
// +CREG, RING, ^RSSI, ...). Used to tell them from information responses.
[[nodiscard]] bool is_known_urc(std::string_view line) noexcept;

}  // namespace otpbox::gsm
