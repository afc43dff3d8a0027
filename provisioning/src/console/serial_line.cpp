#include "console/serial_line.hpp"

#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace otpbox::provisioning::console {

namespace {

constexpr auto kWriteStall = std::chrono::seconds(3);

[[noreturn]] void throw_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

[[noreturn]] void line_failed(const std::string& what) {
    throw LineError(what + ": " + std::generic_category().message(errno));
}

speed_t speed_of(unsigned baud) {
    switch (baud) {
        case 9600:
            return B9600;
        case 19200:
            return B19200;
        case 38400:
            return B38400;
        case 57600:
            return B57600;
        case 115200:
            return B115200;
        default:
            throw std::system_error(
                std::make_error_code(std::errc::invalid_argument),
                "baud rate " + std::to_string(baud) + " (use 9600, 19200, 38400, 57600 or 115200)");
    }
}

// Raw 8N1: no parity, one stop bit, no flow control in either direction,
// modem control lines ignored (CLOCAL) so a cable without DCD works. A break
// arrives as a NUL byte (IGNBRK and BRKINT off), which the editor ignores.
void configure(int fd, const std::string& name, unsigned baud) {
    termios settings{};
    if (tcgetattr(fd, &settings) != 0) {
        throw_errno(name + ": not a terminal");
    }
    cfmakeraw(&settings);
    settings.c_cflag &= ~static_cast<tcflag_t>(CSTOPB | PARENB | CRTSCTS | CSIZE);
    settings.c_cflag |= CS8 | CLOCAL | CREAD;
    settings.c_iflag &= ~static_cast<tcflag_t>(IXON | IXOFF | IXANY | IGNBRK | BRKINT);
    cfsetispeed(&settings, speed_of(baud));
    cfsetospeed(&settings, speed_of(baud));
    if (tcsetattr(fd, TCSANOW, &settings) != 0) {
        throw_errno(name + ": cannot set 8N1");
    }
}

}  // namespace

SerialLine::SerialLine(int fd, std::unique_ptr<gsm::PseudoTerminal> pty)
    : m_fd(fd), m_pty(std::move(pty)) {}

SerialLine::~SerialLine() {
    if (!m_pty && m_fd >= 0) {
        ::close(m_fd);
    }
}

std::unique_ptr<SerialLine> SerialLine::open_device(const std::filesystem::path& path,
                                                    unsigned baud) {
    const auto name = path.string();
    speed_of(baud);
    const int fd = ::open(name.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        throw_errno(name);
    }
    try {
        configure(fd, name, baud);
    } catch (...) {
        ::close(fd);
        throw;
    }
    return std::unique_ptr<SerialLine>(new SerialLine(fd, nullptr));
}

std::unique_ptr<SerialLine> SerialLine::open_pty(const std::filesystem::path& link) {
    auto pty = std::make_unique<gsm::PseudoTerminal>(link);
    const int fd = pty->master_fd();
    return std::unique_ptr<SerialLine>(new SerialLine(fd, std::move(pty)));
}

std::string SerialLine::read(std::size_t max, std::chrono::milliseconds timeout) {
    pollfd waiting{m_fd, POLLIN, 0};
    const int ready = ::poll(&waiting, 1, static_cast<int>(timeout.count()));
    if (ready < 0) {
        if (errno == EINTR) {
            return {};
        }
        line_failed("serial line: poll");
    }
    if (ready == 0) {
        return {};
    }
    std::string bytes(max, '\0');
    const auto count = ::read(m_fd, bytes.data(), bytes.size());
    if (count < 0) {
        if (errno == EAGAIN || errno == EINTR) {
            return {};
        }
        line_failed("serial line: read");
    }
    if (count == 0 && (waiting.revents & POLLHUP) != 0) {
        throw LineError("serial line: hang-up");
    }
    bytes.resize(static_cast<std::size_t>(count));
    return bytes;
}

void SerialLine::write(std::string_view text) {
    const auto give_up = std::chrono::steady_clock::now() + kWriteStall;
    while (!text.empty()) {
        const auto count = ::write(m_fd, text.data(), text.size());
        if (count > 0) {
            text.remove_prefix(static_cast<std::size_t>(count));
            continue;
        }
        if (count < 0 && errno != EAGAIN && errno != EINTR) {
            line_failed("serial line: write");
        }
        const auto left = give_up - std::chrono::steady_clock::now();
        if (left <= std::chrono::milliseconds(0)) {
            return;
        }
        pollfd waiting{m_fd, POLLOUT, 0};
        (void)::poll(
            &waiting, 1,
            static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(left).count()));
    }
}

}  // namespace otpbox::provisioning::console
