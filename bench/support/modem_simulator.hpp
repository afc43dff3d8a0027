#pragma once

// otpbox-modemsim as a child process on a pseudo-terminal of its own: its
// link, outbox, log and the arrival times of its AT+CMGS commands appear in
// the folder given. Stopped when it goes.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "otpbox/gsm/modem.hpp"

namespace otpbox::bench {

class ModemSimulator {
  public:
    // send_delay is the simulator's --latency-ms: how long it takes from
    // the PDU to its +CMGS answer. Exits the program when the simulator
    // makes no link within 10 s.
    ModemSimulator(const std::filesystem::path& dir, const std::string& name,
                   std::chrono::milliseconds send_delay);
    ~ModemSimulator();
    ModemSimulator(const ModemSimulator&) = delete;
    ModemSimulator& operator=(const ModemSimulator&) = delete;

    [[nodiscard]] std::chrono::milliseconds send_delay() const noexcept { return m_send_delay; }

    // A configuration for a gsm::Modem on this simulator.
    [[nodiscard]] gsm::ModemConfig modem_config(const std::string& modem_name) const;

    // When the first byte of each AT+CMGS the simulator accepted so far
    // reached it, oldest first, as the simulator read the pty (its
    // --cmgs-arrivals). Comparable with std::chrono::steady_clock::now():
    // both are CLOCK_MONOTONIC.
    [[nodiscard]] std::vector<std::chrono::steady_clock::time_point> cmgs_arrivals() const;

  private:
    std::filesystem::path m_link;
    std::filesystem::path m_cmgs_arrivals;
    std::chrono::milliseconds m_send_delay;
    pid_t m_pid = -1;
};

}  // namespace otpbox::bench
