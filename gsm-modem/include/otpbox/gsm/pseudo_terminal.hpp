#pragma once

// One end of a pseudo-terminal pair, with a symlink to the other end that
// stands in for a serial device (/dev/ttyUSB0 for the modem simulator, the
// technician's end for the console). Removes the link when destroyed.

#include <filesystem>
#include <string>

namespace otpbox::gsm {

class PseudoTerminal {
  public:
    // Throws std::system_error when the pty or the link cannot be made.
    explicit PseudoTerminal(std::filesystem::path link);
    ~PseudoTerminal();
    PseudoTerminal(const PseudoTerminal&) = delete;
    PseudoTerminal& operator=(const PseudoTerminal&) = delete;

    [[nodiscard]] int master_fd() const { return m_master; }
    [[nodiscard]] const std::string& slave_name() const { return m_slave_name; }
    // True once the host has read everything written to it.
    [[nodiscard]] bool drained() const;

  private:
    int m_master = -1;
    // Held open so the master does not see a hang-up each time the host
    // closes its end between sessions.
    int m_slave = -1;
    std::string m_slave_name;
    std::filesystem::path m_link;
};

}  // namespace otpbox::gsm
