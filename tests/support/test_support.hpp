#pragma once

// Helpers shared by the test programs: temporary directories, SoftHSM2 tokens
// made per test run, free TCP ports on loopback, and child processes started
// and stopped by pid.

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace otpbox::test {

// A directory under /tmp removed with everything in it when destroyed.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    [[nodiscard]] const std::filesystem::path& path() const { return m_path; }

  private:
    std::filesystem::path m_path;
};

// A SoftHSM2 token in its own directory, initialised through softhsm2-util.
// SOFTHSM2_CONF is set for this process (and the children it starts) while
// the token lives.
class SoftHsmToken {
  public:
    explicit SoftHsmToken(std::string label = "otpbox-test", std::string user_pin = "123456",
                          std::string so_pin = "12345678");
    ~SoftHsmToken();
    SoftHsmToken(const SoftHsmToken&) = delete;
    SoftHsmToken& operator=(const SoftHsmToken&) = delete;

    [[nodiscard]] const std::string& label() const { return m_label; }
    [[nodiscard]] const std::string& user_pin() const { return m_user_pin; }
    [[nodiscard]] const std::string& so_pin() const { return m_so_pin; }
    [[nodiscard]] std::filesystem::path conf_path() const;
    // A file holding the user PIN, mode 0600.
    [[nodiscard]] std::filesystem::path pin_file() const;
    [[nodiscard]] const std::filesystem::path& dir() const { return m_dir.path(); }
    static std::string module_path();

  private:
    TempDir m_dir;
    std::string m_label;
    std::string m_user_pin;
    std::string m_so_pin;
    std::optional<std::string> m_previous_conf;
};

// A TCP port on 127.0.0.1 that nothing listened on a moment ago.
unsigned short free_port();

// Runs a shell command, returns its exit status and standard output.
struct CommandResult {
    int status = -1;
    std::string output;
};
CommandResult run_command(const std::string& command);

// A child process started with execvp and stopped by its pid.
class ChildProcess {
  public:
    ChildProcess(std::vector<std::string> argv, std::vector<std::string> extra_env = {},
                 std::optional<std::filesystem::path> log_file = std::nullopt);
    ~ChildProcess();
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    [[nodiscard]] int pid() const { return m_pid; }
    [[nodiscard]] bool running();
    // SIGTERM, then SIGKILL after the grace time; returns the exit status.
    int stop(std::chrono::milliseconds grace = std::chrono::seconds(5));
    void kill_hard();

  private:
    int m_pid = -1;
    std::optional<int> m_status;
};

// Waits until pred() is true or the timeout passes.
template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds step = std::chrono::milliseconds(50));

// The built program of that name (from the build directory).
std::filesystem::path program_path(const std::string& name);

// The OTP code (the only run of 6-8 digits) of the nth SMS in a simulator
// outbox whose recipient ends with number_suffix, waiting up to timeout.
std::optional<std::string> outbox_code(const std::filesystem::path& outbox,
                                       const std::string& number_suffix, std::size_t nth,
                                       std::chrono::milliseconds timeout);

std::string read_file(const std::filesystem::path& path);
void write_file(const std::filesystem::path& path, const std::string& text, unsigned mode = 0644);

}  // namespace otpbox::test

#include "test_support_impl.hpp"
