#include "instance_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

namespace otpbox::firmware::detail {

namespace {

std::string holder_of(int fd) {
    char text[32] = {};
    const auto got = ::pread(fd, text, sizeof(text) - 1, 0);
    std::string pid(text, got > 0 ? static_cast<std::size_t>(got) : 0);
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == '\0')) {
        pid.pop_back();
    }
    return pid.empty() ? "unknown" : pid;
}

}  // namespace

InstanceLock::InstanceLock(const std::filesystem::path& file)
    : m_fd(::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) {
    if (m_fd < 0) {
        throw InstanceLockError("lock file " + file.string() + ": " + std::strerror(errno));
    }
    if (::flock(m_fd, LOCK_EX | LOCK_NB) != 0) {
        const int error = errno;
        const auto holder = error == EWOULDBLOCK ? holder_of(m_fd) : std::string();
        ::close(m_fd);
        if (error == EWOULDBLOCK) {
            throw InstanceLockError("another otpboxd (pid " + holder + ") already uses " +
                                    file.parent_path().string() + " (lock file " + file.string() +
                                    ")");
        }
        throw InstanceLockError("lock file " + file.string() + ": " + std::strerror(error));
    }
    const auto pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(m_fd, 0) != 0 ||
        ::pwrite(m_fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
        const int error = errno;
        ::close(m_fd);
        throw InstanceLockError("lock file " + file.string() + ": " + std::strerror(error));
    }
}

InstanceLock::~InstanceLock() {
    // The file stays: removing it here could let a third daemon lock a new
    // file of that name while a second one holds the old one.
    ::close(m_fd);
}

// The lock goes beside the file the path ends at: a database reached through a
// symlink (a second configuration naming a link to it) must meet the same lock,
// or two daemons would share the database after all. A hard link or another
// mount of the file system still names a lock of its own.
std::filesystem::path InstanceLock::beside(const std::filesystem::path& database) {
    std::error_code error;
    auto file = std::filesystem::weakly_canonical(database, error);
    if (error) {
        file = database;
    }
    file += ".lock";
    return file;
}

}  // namespace otpbox::firmware::detail
