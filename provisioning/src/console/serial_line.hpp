#pragma once

// The console's serial line: a real device set to raw 8N1 without flow
// control, or (for the development instance and tests) our end of a
// pseudo-terminal pair whose other end is a symlink the technician opens.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "otpbox/gsm/pseudo_terminal.hpp"

namespace otpbox::provisioning::console {

// The line itself failed (a read or write error, a hang-up): the console
// cannot go on and ends, for its supervisor to start it again.
class LineError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class SerialLine {
  public:
    // Opens a serial device at this speed (9600 ... 115200), 8N1, no flow
    // control, modem lines ignored. Throws std::system_error.
    [[nodiscard]] static std::unique_ptr<SerialLine> open_device(const std::filesystem::path& path,
                                                                 unsigned baud);
    // Makes a pseudo-terminal pair and links its other end at link.
    [[nodiscard]] static std::unique_ptr<SerialLine> open_pty(const std::filesystem::path& link);

    ~SerialLine();
    SerialLine(const SerialLine&) = delete;
    SerialLine& operator=(const SerialLine&) = delete;

    // Up to max bytes, waiting at most timeout; "" when nothing came.
    // Throws LineError when the line is gone.
    [[nodiscard]] std::string read(std::size_t max, std::chrono::milliseconds timeout);

    // Writes all of text unless nobody reads for a few seconds: a console
    // nobody is attached to must not hang, so the rest is dropped then.
    void write(std::string_view text);

  private:
    SerialLine(int fd, std::unique_ptr<gsm::PseudoTerminal> pty);

    int m_fd = -1;  // the device, or the pty's master (owned by m_pty)
    std::unique_ptr<gsm::PseudoTerminal> m_pty;
};

}  // namespace otpbox::provisioning::console
