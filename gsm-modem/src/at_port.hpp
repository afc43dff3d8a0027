#pragma once

// The serial port under the AT engine: Boost.Asio on its own io_context, so
// that every read and write waits at most until a deadline.

#include <boost/asio/io_context.hpp>
#include <boost/asio/serial_port.hpp>
#include <chrono>
#include <span>
#include <string_view>

#include "otpbox/gsm/at_engine.hpp"

namespace otpbox::gsm {

class SerialPort {
  public:
    using Deadline = std::chrono::steady_clock::time_point;

    // Opens 8N1 at the given speed (a pseudo-terminal accepts it too).
    explicit SerialPort(const SerialSettings& settings);

    // Bytes read into buffer, 0 when the deadline passed first.
    // Throws AtError(port_closed) when the port fails or the far end hangs up.
    [[nodiscard]] std::size_t read_some(std::span<char> buffer, Deadline deadline);
    void write(std::string_view bytes, Deadline deadline);

  private:
    template <class Start>
    boost::system::error_code run_until(Start start, Deadline deadline);

    boost::asio::io_context m_io;
    boost::asio::serial_port m_port;
};

}  // namespace otpbox::gsm
