#pragma once

// One console at a time for an appliance. Two would race each other: two
// rotations of one key at the same moment make two keys of one label. The
// lock is an flock on console.lock beside the configuration, held for the
// console's whole run; the file holds the pid of the console that has it.
// The kernel lets go of the lock when that process ends, however it ends.

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <stdexcept>

namespace otpbox::provisioning::console {

// Another console holds the lock; pid is that console's when the file says it.
class AnotherConsole : public std::runtime_error {
  public:
    AnotherConsole(const std::string& what, std::optional<pid_t> pid)
        : std::runtime_error(what), m_pid(pid) {}
    [[nodiscard]] std::optional<pid_t> pid() const { return m_pid; }

  private:
    std::optional<pid_t> m_pid;
};

[[nodiscard]] std::filesystem::path run_lock_file(const std::filesystem::path& config_file);

class RunLock {
  public:
    // Takes the lock without waiting. Throws AnotherConsole when another
    // console has it, std::system_error when the file cannot be opened.
    explicit RunLock(const std::filesystem::path& config_file);
    ~RunLock();
    RunLock(const RunLock&) = delete;
    RunLock& operator=(const RunLock&) = delete;

  private:
    int m_fd = -1;
};

}  // namespace otpbox::provisioning::console
