#include "at_port.hpp"

#include <sys/file.h>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <optional>
#include <system_error>

#include "otpbox/gsm/at_error.hpp"

namespace otpbox::gsm {
namespace {

using boost::asio::serial_port_base;

[[noreturn]] void throw_port_error(std::string_view step, const boost::system::error_code& ec) {
    throw AtError(make_error_code(AtErrc::port_closed), std::string(step) + ": " + ec.message());
}

}  // namespace

SerialPort::SerialPort(const SerialSettings& settings) : m_port(m_io) {
    boost::system::error_code ec;
    m_port.open(settings.device.string(), ec);
    if (ec) {
        throw_port_error("open " + settings.device.string(), ec);
    }
    // Two programs writing AT commands to one modem would interleave them;
    // the lock goes with the descriptor, so a reopen after a reset takes it
    // again and an ended process leaves none behind. Programs that take no
    // such lock (ModemManager, a terminal program) are not kept out.
    if (::flock(m_port.native_handle(), LOCK_EX | LOCK_NB) != 0) {
        const int error = errno;
        throw AtError(
            make_error_code(AtErrc::port_closed),
            "open " + settings.device.string() + ": " +
                (error == EWOULDBLOCK ? std::string("in use by another program (another otpboxd?)")
                                      : "cannot lock: " + std::system_category().message(error)));
    }
    const auto flow = settings.hardware_flow_control ? serial_port_base::flow_control::hardware
                                                     : serial_port_base::flow_control::none;
    try {
        m_port.set_option(serial_port_base::baud_rate(settings.baud));
        m_port.set_option(serial_port_base::character_size(8));
        m_port.set_option(serial_port_base::parity(serial_port_base::parity::none));
        m_port.set_option(serial_port_base::stop_bits(serial_port_base::stop_bits::one));
        m_port.set_option(serial_port_base::flow_control(flow));
    } catch (const boost::system::system_error& error) {
        throw_port_error("configure " + settings.device.string(), error.code());
    }
}

// Runs one asynchronous operation to completion or until the deadline; a
// late operation is cancelled and its handler still run, so no handler ever
// outlives the call.
template <class Start>
boost::system::error_code SerialPort::run_until(Start start, Deadline deadline) {
    std::optional<boost::system::error_code> result;
    start([&result](const boost::system::error_code& ec) { result = ec; });
    m_io.restart();
    m_io.run_for(std::max(deadline - std::chrono::steady_clock::now(), Deadline::duration::zero()));
    if (!result) {
        boost::system::error_code ignored;
        m_port.cancel(ignored);
        m_io.restart();
        m_io.run();
    }
    return result.value_or(boost::asio::error::operation_aborted);
}

std::size_t SerialPort::read_some(std::span<char> buffer, Deadline deadline) {
    std::size_t received = 0;
    const auto ec = run_until(
        [&](auto done) {
            m_port.async_read_some(boost::asio::buffer(buffer.data(), buffer.size()),
                                   [&received, done](const auto& error, std::size_t bytes) {
                                       received = bytes;
                                       done(error);
                                   });
        },
        deadline);
    if (ec && ec != boost::asio::error::operation_aborted) {
        throw_port_error("read", ec);
    }
    return received;
}

void SerialPort::write(std::string_view bytes, Deadline deadline) {
    const auto ec = run_until(
        [&](auto done) {
            boost::asio::async_write(m_port, boost::asio::buffer(bytes.data(), bytes.size()),
                                     [done](const auto& error, std::size_t) { done(error); });
        },
        deadline);
    if (ec == boost::asio::error::operation_aborted) {
        throw AtError(make_error_code(AtErrc::timeout), "write: flow control held the port");
    }
    if (ec) {
        throw_port_error("write", ec);
    }
}

}  // namespace otpbox::gsm
