#pragma once

// The simulator's event loop: bytes from the pty to the session, the
// session's answers back at the time they are due, noise on a period.
// Single-threaded; every wait is a ppoll with a deadline.
//
// Every read from the pty is timed, so that when asked (--cmgs-arrivals) it
// can say when the first byte of each accepted AT+CMGS arrived: the
// steady_clock time, which on Linux is CLOCK_MONOTONIC and so comparable
// with the host's clock.

#include <chrono>
#include <csignal>
#include <cstdint>
#include <deque>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "modem_session.hpp"
#include "otpbox/gsm/pseudo_terminal.hpp"
#include "sim_options.hpp"

namespace otpbox::modemsim {

using gsm::PseudoTerminal;

class Simulator {
  public:
    Simulator(const SimOptions& options, PseudoTerminal& pty, ModemSession& session);

    // Runs until stop becomes non-zero (a signal) or the hang-up fault
    // fires. signal_mask is the mask ppoll waits with, so a blocked
    // SIGTERM can interrupt it. Throws std::system_error on pty failures.
    void run(const volatile std::sig_atomic_t& stop, const sigset_t& signal_mask);

  private:
    using Clock = std::chrono::steady_clock;
    struct Scheduled {
        Clock::time_point due;
        std::uint64_t order = 0;
        std::string text;
        bool blocking = false;
    };
    // One read's bytes, still in m_input.
    struct Arrival {
        std::size_t bytes = 0;
        Clock::time_point at;
    };

    void release_due(Clock::time_point now);
    void feed_input(Clock::time_point now);
    void schedule(std::vector<Output> outputs, Clock::time_point now);
    [[nodiscard]] Clock::time_point take_arrival();
    void record_cmgs_arrival();
    void emit_noise(Clock::time_point now);
    void write_output();
    void read_input();
    void wait(Clock::time_point now, const sigset_t& signal_mask);
    [[nodiscard]] bool hung_up(Clock::time_point now);

    const SimOptions& m_options;
    PseudoTerminal& m_pty;
    ModemSession& m_session;
    std::vector<Scheduled> m_scheduled;
    std::uint64_t m_next_order = 0;
    int m_blocking = 0;
    std::string m_input;
    std::deque<Arrival> m_arrivals;  // of the bytes in m_input, oldest first
    Clock::time_point m_command_arrived;
    std::ofstream m_cmgs_arrivals;
    std::string m_output;
    Clock::time_point m_next_noise;
    std::optional<Clock::time_point> m_hangup_since;
};

}  // namespace otpbox::modemsim
