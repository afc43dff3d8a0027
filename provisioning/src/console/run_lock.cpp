#include "console/run_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <string>
#include <system_error>

namespace otpbox::provisioning::console {

namespace {

std::optional<pid_t> read_pid(int fd) {
    char text[32] = {};
    const auto count = ::pread(fd, text, sizeof text - 1, 0);
    if (count <= 0) {
        return std::nullopt;
    }
    pid_t pid = 0;
    const auto [end, error] = std::from_chars(text, text + count, pid);
    if (error != std::errc() || pid <= 0) {
        return std::nullopt;
    }
    return pid;
}

}  // namespace

std::filesystem::path run_lock_file(const std::filesystem::path& config_file) {
    return config_file.parent_path() / "console.lock";
}

RunLock::RunLock(const std::filesystem::path& config_file) {
    const auto file = run_lock_file(config_file);
    m_fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (m_fd < 0) {
        throw std::system_error(errno, std::generic_category(), "cannot open " + file.string());
    }
    if (::flock(m_fd, LOCK_EX | LOCK_NB) != 0) {
        const int error = errno;
        const auto pid = read_pid(m_fd);
        ::close(m_fd);
        m_fd = -1;
        if (error != EWOULDBLOCK) {
            throw std::system_error(error, std::generic_category(), "cannot lock " + file.string());
        }
        throw AnotherConsole("another otpbox-console is running for this appliance" +
                                 (pid ? " (pid " + std::to_string(*pid) + ")" : std::string()) +
                                 "; only one runs at a time (lock " + file.string() + ")",
                             pid);
    }
    // The pid only makes a second console's message plainer (the lock holds
    // without it); one left by a console that ended is overwritten here.
    const auto pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(m_fd, 0) == 0) {
        (void)::pwrite(m_fd, pid.data(), pid.size(), 0);
    }
}

RunLock::~RunLock() {
    if (m_fd >= 0) {
        ::close(m_fd);
    }
}

}  // namespace otpbox::provisioning::console
