#pragma once

// What the simulated modem says to what the host sends: ITU-T V.250 command
// lines, the TS 27.007 and TS 27.005 commands a host needs to send SMS in
// PDU mode, and the faults the options ask for. Knows nothing of the pty:
// bytes in, timed outputs out.

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "message_assembler.hpp"
#include "outbox.hpp"
#include "sim_options.hpp"

namespace otpbox::modemsim {

struct Output {
    std::string text;
    std::chrono::milliseconds delay{0};
    bool blocking = false;  // no input is read until it is written, like a busy modem
};

struct Command {
    enum class Kind { action, read, test, set };
    std::string name;  // "+CMGS", upper case
    Kind kind = Kind::action;
    std::string arguments;
};

struct Reply {
    std::vector<std::string> lines;
    std::string final_result = "OK";
    bool prompt = false;  // AT+CMGS accepted: wait for the PDU
};

class ModemSession {
  public:
    ModemSession(const SimOptions& options, Outbox& outbox);

    [[nodiscard]] std::vector<Output> feed(char byte);
    [[nodiscard]] std::string noise_line();
    [[nodiscard]] bool hangup_due() const;

    // True while the command line so far holds nothing but line ends and
    // spaces, so that the next byte may begin a command.
    [[nodiscard]] bool between_commands() const;
    // True from an accepted AT+CMGS until its PDU ends or is cancelled.
    [[nodiscard]] bool taking_pdu() const { return m_mode == Mode::pdu; }

  private:
    enum class Mode { command, pdu };
    using Handler = Reply (ModemSession::*)(const Command&);

    [[nodiscard]] std::vector<Output> feed_command(char byte);
    [[nodiscard]] std::vector<Output> feed_pdu(char byte);
    [[nodiscard]] std::vector<Output> end_of_line();
    [[nodiscard]] std::vector<Output> submit_pdu();
    [[nodiscard]] std::vector<Output> accept_pdu(const std::string& hex);
    [[nodiscard]] Reply run_line(std::string_view line);
    [[nodiscard]] Reply run_basic(std::string_view& rest);
    [[nodiscard]] Reply run_extended(std::string_view text);
    [[nodiscard]] std::string format(const Reply& reply) const;

    [[nodiscard]] std::string cme_error(int code) const;
    [[nodiscard]] Reply cme(int code) const;
    [[nodiscard]] std::optional<Reply> sim_not_ready() const;
    [[nodiscard]] std::optional<int> injected_error();
    [[nodiscard]] bool lose_ok();
    [[nodiscard]] bool registered() const { return !m_options.no_registration; }

    // One per command; session_commands.cpp.
    [[nodiscard]] Reply cmee(const Command& command);
    [[nodiscard]] Reply cpin(const Command& command);
    [[nodiscard]] Reply creg(const Command& command);
    [[nodiscard]] Reply cmgf(const Command& command);
    [[nodiscard]] Reply cnmi(const Command& command);
    [[nodiscard]] Reply csq(const Command& command);
    [[nodiscard]] Reply csca(const Command& command);
    [[nodiscard]] Reply cscs(const Command& command);
    [[nodiscard]] Reply identity(const Command& command);
    [[nodiscard]] Reply cimi(const Command& command);
    [[nodiscard]] Reply cfun(const Command& command);
    [[nodiscard]] Reply cpms(const Command& command);
    [[nodiscard]] Reply csms(const Command& command);
    [[nodiscard]] Reply cops(const Command& command);
    [[nodiscard]] Reply csmp(const Command& command);
    [[nodiscard]] Reply storage(const Command& command);
    [[nodiscard]] Reply accept(const Command& command);
    [[nodiscard]] Reply cmgs(const Command& command);
    [[nodiscard]] static Handler handler_for(std::string_view name);

    const SimOptions& m_options;
    Outbox& m_outbox;
    MessageAssembler m_assembler;
    std::mt19937_64 m_random;

    Mode m_mode = Mode::command;
    std::string m_line;
    bool m_line_overflow = false;
    std::string m_pdu;
    std::size_t m_pdu_length = 0;

    bool m_echo = true;
    int m_cmee = 0;
    int m_creg = 0;
    int m_cereg = 0;
    std::string m_charset = "GSM";
    bool m_sim_ready = true;
    std::chrono::steady_clock::time_point m_sim_busy_until{};
    std::uint8_t m_next_reference = 0;
    unsigned m_sent = 0;
};

}  // namespace otpbox::modemsim
