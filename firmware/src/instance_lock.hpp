#pragma once

// One otpboxd per database. A second daemon on the same configuration would
// drive the same modems over the same serial lines, interleaving their AT
// commands, and run a second API and audit anchor beside the first. Two
// configurations with different databases that name the same serial device
// are not caught here but when the second opens the port, which gsm's
// SerialPort locks.

#include <filesystem>
#include <stdexcept>

namespace otpbox::firmware::detail {

class InstanceLockError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// An exclusive flock(2) on a file beside the database, held until
// destruction (and by the kernel until the process ends, however it ends).
// The file keeps the holder's pid, for the message a second daemon gets.
class InstanceLock {
  public:
    // Throws InstanceLockError naming the holder's pid when another process
    // holds the lock, or the file and the reason when it cannot be made.
    explicit InstanceLock(const std::filesystem::path& file);
    ~InstanceLock();
    InstanceLock(const InstanceLock&) = delete;
    InstanceLock& operator=(const InstanceLock&) = delete;

    // The lock file of the daemon whose database this is, beside the file a
    // symlink leads to, so that every path to one database names one lock.
    [[nodiscard]] static std::filesystem::path beside(const std::filesystem::path& database);

  private:
    int m_fd = -1;
};

}  // namespace otpbox::firmware::detail
