#include "otpbox/gsm/pseudo_terminal.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <system_error>

namespace otpbox::gsm {
namespace {

[[noreturn]] void throw_errno(const char* what) {
    throw std::system_error(errno, std::generic_category(), what);
}

// Raw, so the line discipline neither echoes nor edits: echo is the modem's
// business (ATE), and PDUs carry Ctrl-Z and ESC.
void make_raw(int fd) {
    termios settings{};
    if (tcgetattr(fd, &settings) != 0) {
        throw_errno("tcgetattr");
    }
    cfmakeraw(&settings);
    if (tcsetattr(fd, TCSANOW, &settings) != 0) {
        throw_errno("tcsetattr");
    }
}

// A stale link from an earlier run is replaced; anything else is not ours.
void place_link(const std::string& target, const std::filesystem::path& link) {
    if (std::filesystem::exists(std::filesystem::symlink_status(link)) &&
        !std::filesystem::is_symlink(std::filesystem::symlink_status(link))) {
        throw std::system_error(std::make_error_code(std::errc::file_exists),
                                "link path exists and is not a symlink");
    }
    auto temporary = link;
    temporary += ".tmp";
    std::filesystem::remove(temporary);
    std::filesystem::create_symlink(target, temporary);
    std::filesystem::rename(temporary, link);
}

}  // namespace

PseudoTerminal::PseudoTerminal(std::filesystem::path link) : m_link(std::move(link)) {
    m_master = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (m_master < 0) {
        throw_errno("posix_openpt");
    }
    try {
        if (grantpt(m_master) != 0 || unlockpt(m_master) != 0) {
            throw_errno("grantpt/unlockpt");
        }
        char name[128] = {};
        if (ptsname_r(m_master, name, sizeof name) != 0) {
            throw_errno("ptsname_r");
        }
        m_slave_name = name;
        m_slave = ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (m_slave < 0) {
            throw_errno("open pty slave");
        }
        make_raw(m_slave);
        place_link(m_slave_name, m_link);
    } catch (...) {
        if (m_slave >= 0) {
            ::close(m_slave);
        }
        ::close(m_master);
        throw;
    }
}

bool PseudoTerminal::drained() const {
    int pending = 0;
    return ::ioctl(m_slave, TIOCINQ, &pending) != 0 || pending == 0;
}

PseudoTerminal::~PseudoTerminal() {
    std::error_code ignored;
    // Only our own link: another simulator may have taken the path since.
    if (std::filesystem::read_symlink(m_link, ignored) == m_slave_name) {
        std::filesystem::remove(m_link, ignored);
    }
    ::close(m_slave);
    ::close(m_master);
}

}  // namespace otpbox::gsm
