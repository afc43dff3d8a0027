#include "modem_simulator.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>
#include <vector>

namespace otpbox::bench {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

[[noreturn]] void fail(const std::string& why) {
    std::fprintf(stderr, "bench: %s\n", why.c_str());
    std::exit(1);
}

// posix_spawn rather than fork: the process already runs the hsm layer's
// threads, and a forked child may only call async-signal-safe functions.
pid_t spawn(std::vector<std::string> argv, const fs::path& log) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    std::vector<char*> args;
    for (auto& arg : argv) {
        args.push_back(arg.data());
    }
    args.push_back(nullptr);
    pid_t pid = -1;
    const int error = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0) {
        fail("cannot start " + argv[0] + ": " + std::strerror(error));
    }
    return pid;
}

[[nodiscard]] bool exited_within(pid_t pid, std::chrono::milliseconds grace) {
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) {
            return true;
        }
        std::this_thread::sleep_for(10ms);
    }
    return false;
}

}  // namespace

ModemSimulator::ModemSimulator(const fs::path& dir, const std::string& name,
                               std::chrono::milliseconds send_delay)
    : m_link(dir / name),
      m_cmgs_arrivals(dir / (name + ".cmgs-arrivals")),
      m_send_delay(send_delay) {
    m_pid = spawn({OTPBOX_MODEMSIM_PATH, "--link", m_link.string(), "--outbox",
                   (dir / (name + ".jsonl")).string(), "--latency-ms",
                   std::to_string(send_delay.count()), "--cmgs-arrivals", m_cmgs_arrivals.string()},
                  dir / (name + ".log"));
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!fs::exists(m_link)) {
        if (std::chrono::steady_clock::now() >= deadline) {
            fail("otpbox-modemsim made no link; see " + (dir / (name + ".log")).string());
        }
        std::this_thread::sleep_for(10ms);
    }
}

ModemSimulator::~ModemSimulator() {
    ::kill(m_pid, SIGTERM);
    if (!exited_within(m_pid, 3s)) {
        ::kill(m_pid, SIGKILL);
        int status = 0;
        ::waitpid(m_pid, &status, 0);
    }
}

gsm::ModemConfig ModemSimulator::modem_config(const std::string& modem_name) const {
    gsm::ModemConfig config;
    config.name = modem_name;
    config.device = m_link;
    config.command_timeout = 2s;
    config.send_timeout = 10s;
    config.registration_wait = 5s;
    return config;
}

std::vector<std::chrono::steady_clock::time_point> ModemSimulator::cmgs_arrivals() const {
    std::vector<std::chrono::steady_clock::time_point> arrivals;
    std::ifstream file(m_cmgs_arrivals);
    for (long long nanoseconds = 0; file >> nanoseconds;) {
        arrivals.emplace_back(std::chrono::nanoseconds(nanoseconds));
    }
    return arrivals;
}

}  // namespace otpbox::bench
