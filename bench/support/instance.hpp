#pragma once

// A provisioned development instance in a temporary folder and otpboxd
// serving it on a free port of 127.0.0.1 (never 8443), for the benchmarks
// that load the daemon through its API.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "modem_simulator.hpp"

namespace otpbox::bench {

// A folder otpbox-bench-<name>-XXXXXX under the temporary directory,
// removed with everything in it at the end.
class TempDir {
  public:
    explicit TempDir(const std::string& name);
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    [[nodiscard]] const std::filesystem::path& path() const { return m_path; }

  private:
    std::filesystem::path m_path;
};

// A program started in the background with its output in a log file, and
// stopped by its pid: SIGTERM, then SIGKILL after a grace time.
class Child {
  public:
    Child(const std::vector<std::string>& argv, const std::filesystem::path& log);
    ~Child();
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    [[nodiscard]] pid_t pid() const { return m_pid; }

  private:
    pid_t m_pid = -1;
};

// Runs a shell command; throws when it fails.
void run_command(const std::string& command);

std::string read_text(const std::filesystem::path& path);

// Writes a 0600 file beside path and renames it over path.
void replace_text(const std::filesystem::path& path, const std::string& text);

// A port of 127.0.0.1 that was free a moment ago.
std::uint16_t free_port();

// The development instance, provisioned into dir by otpbox-provision with its
// port changed to a free one (never 8443); returns the port.
std::uint16_t provision(const std::filesystem::path& dir);

// Has the development CA in pki sign the request in csr (PEM) with the
// server profile provisioning gives the HSM key's certificate; writes the
// certificate to certificate.
void sign_csr(const std::filesystem::path& pki, const std::filesystem::path& csr,
              const std::filesystem::path& certificate);

// Sets `key = value` (value as TOML text) in the [api] table of the
// instance's otpbox.toml, e.g. set_api_option(dir, "idle_timeout_seconds",
// "600"). The key must not be there yet.
void set_api_option(const std::filesystem::path& dir, const std::string& key,
                    const std::string& value);

// otpboxd on a provisioned instance, with the modem simulator its
// otpbox.toml names (modem/modem0); stopped when it goes.
class Daemon {
  public:
    explicit Daemon(const std::filesystem::path& dir);

    [[nodiscard]] pid_t pid() const { return m_daemon.pid(); }

    // Its resident memory in bytes (VmRSS of /proc/<pid>/status).
    [[nodiscard]] double resident_bytes() const;

    // The CPU time it has used so far, user and system, in seconds.
    [[nodiscard]] double cpu_seconds() const;

  private:
    ModemSimulator m_modem;
    Child m_daemon;
};

}  // namespace otpbox::bench
