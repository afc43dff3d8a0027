#include "instance.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace otpbox::bench {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// The folder of the instance's modem link (otpbox.toml names modem/modem0).
fs::path modem_dir(const fs::path& dir) {
    fs::create_directories(dir / "modem");
    return dir / "modem";
}

}  // namespace

TempDir::TempDir(const std::string& name) {
    std::string pattern =
        (fs::temp_directory_path() / ("otpbox-bench-" + name + "-XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) {
        throw std::runtime_error("mkdtemp failed");
    }
    m_path = pattern;
}

TempDir::~TempDir() {
    std::error_code ignored;
    fs::remove_all(m_path, ignored);
}

Child::Child(const std::vector<std::string>& argv, const fs::path& log) {
    std::vector<char*> args;
    for (const auto& arg : argv) {
        args.push_back(const_cast<char*>(arg.c_str()));
    }
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    const int error = ::posix_spawn(&m_pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0) {
        throw std::runtime_error("cannot start " + argv[0]);
    }
}

Child::~Child() {
    ::kill(m_pid, SIGTERM);
    for (int i = 0; i < 100; ++i) {
        if (::waitpid(m_pid, nullptr, WNOHANG) == m_pid) {
            return;
        }
        std::this_thread::sleep_for(100ms);
    }
    ::kill(m_pid, SIGKILL);
    ::waitpid(m_pid, nullptr, 0);
}

void run_command(const std::string& command) {
    if (std::system(command.c_str()) != 0) {
        throw std::runtime_error("failed: " + command);
    }
}

std::string read_text(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

void replace_text(const fs::path& path, const std::string& text) {
    const fs::path next = path.string() + ".next";
    std::ofstream(next) << text;
    fs::permissions(next, fs::perms::owner_read | fs::perms::owner_write);
    fs::rename(next, path);
}

std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    ::bind(fd, reinterpret_cast<sockaddr*>(&address), length);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    ::close(fd);
    return ntohs(address.sin_port);
}

std::uint16_t provision(const fs::path& dir) {
    run_command(std::string(OTPBOX_PROVISION_PATH) + " dev --dir '" + dir.string() + "' >'" +
                dir.string() + ".provision.log' 2>&1");
    const std::uint16_t port = free_port();
    const auto config = dir / "otpbox.toml";
    replace_text(config, std::regex_replace(read_text(config), std::regex("port = 8443"),
                                            "port = " + std::to_string(port)));
    return port;
}

void sign_csr(const fs::path& pki, const fs::path& csr, const fs::path& certificate) {
    run_command(std::string(OTPBOX_PROVISION_PATH) + " sign-csr --pki '" + pki.string() +
                "' --csr '" + csr.string() + "' >'" + certificate.string() + "'");
}

void set_api_option(const fs::path& dir, const std::string& key, const std::string& value) {
    const auto path = dir / "otpbox.toml";
    auto text = read_text(path);
    const auto table = text.find("[api]\n");
    if (table == std::string::npos) {
        throw std::runtime_error("otpbox.toml has no [api] table");
    }
    if (text.find("\n" + key + " ") != std::string::npos) {
        throw std::runtime_error("otpbox.toml already sets " + key);
    }
    text.insert(table + 6, key + " = " + value + "\n");
    replace_text(path, text);
}

Daemon::Daemon(const fs::path& dir)
    : m_modem(modem_dir(dir), "modem0", 0ms),
      m_daemon({OTPBOXD_PATH, "--config", (dir / "otpbox.toml").string()}, dir / "otpboxd.log") {}

double Daemon::resident_bytes() const {
    std::ifstream status("/proc/" + std::to_string(pid()) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            return std::stod(line.substr(6)) * 1024;  // counted in kB of 1024 bytes
        }
    }
    throw std::runtime_error("no VmRSS for otpboxd");
}

// utime and stime are fields 14 and 15 of /proc/<pid>/stat (proc(5)); the
// second field, the program's name in parentheses, may hold spaces.
double Daemon::cpu_seconds() const {
    const auto stat = read_text("/proc/" + std::to_string(pid()) + "/stat");
    std::istringstream fields(stat.substr(stat.rfind(')') + 1));
    std::string skipped;
    for (int field = 3; field < 14; ++field) {
        fields >> skipped;
    }
    long long user = 0;
    long long system = 0;
    if (!(fields >> user >> system)) {
        throw std::runtime_error("no CPU times for otpboxd");
    }
    return static_cast<double>(user + system) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace otpbox::bench
