#include "test_support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <system_error>

namespace otpbox::test {

namespace fs = std::filesystem;

TempDir::TempDir() {
    std::string pattern = (fs::temp_directory_path() / "otpbox-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
        throw std::system_error(errno, std::generic_category(), "mkdtemp");
    }
    m_path = pattern;
}

TempDir::~TempDir() {
    std::error_code ignored;
    fs::remove_all(m_path, ignored);
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

void write_file(const fs::path& path, const std::string& text, unsigned mode) {
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << text;
        if (!out) {
            throw std::runtime_error("cannot write " + path.string());
        }
    }
    ::chmod(path.c_str(), mode);
}

CommandResult run_command(const std::string& command) {
    CommandResult result;
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) {
        return result;
    }
    std::array<char, 4096> buffer{};
    size_t n = 0;
    while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
        result.output.append(buffer.data(), n);
    }
    const int status = ::pclose(pipe);
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

std::string SoftHsmToken::module_path() {
    if (const char* env = std::getenv("OTPBOX_TEST_PKCS11_MODULE")) {
        return env;
    }
    return "/usr/lib/softhsm/libsofthsm2.so";
}

SoftHsmToken::SoftHsmToken(std::string label, std::string user_pin, std::string so_pin)
    : m_label(std::move(label)), m_user_pin(std::move(user_pin)), m_so_pin(std::move(so_pin)) {
    fs::create_directories(m_dir.path() / "tokens");
    write_file(conf_path(), "directories.tokendir = " + (m_dir.path() / "tokens").string() +
                                "\nobjectstore.backend = file\nlog.level = ERROR\n");
    write_file(pin_file(), m_user_pin + "\n", 0600);

    if (const char* previous = std::getenv("SOFTHSM2_CONF")) {
        m_previous_conf = previous;
    }
    ::setenv("SOFTHSM2_CONF", conf_path().c_str(), 1);

    const auto result =
        run_command("softhsm2-util --init-token --free --label '" + m_label + "' --so-pin '" +
                    m_so_pin + "' --pin '" + m_user_pin + "' 2>&1");
    if (result.status != 0) {
        throw std::runtime_error("softhsm2-util --init-token failed: " + result.output);
    }
}

SoftHsmToken::~SoftHsmToken() {
    if (m_previous_conf) {
        ::setenv("SOFTHSM2_CONF", m_previous_conf->c_str(), 1);
    } else {
        ::unsetenv("SOFTHSM2_CONF");
    }
}

fs::path SoftHsmToken::conf_path() const {
    return m_dir.path() / "softhsm2.conf";
}

fs::path SoftHsmToken::pin_file() const {
    return m_dir.path() / "user.pin";
}

unsigned short free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        throw std::system_error(errno, std::generic_category(), "socket");
    }
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    socklen_t length = sizeof(address);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        ::close(fd);
        throw std::system_error(errno, std::generic_category(), "bind");
    }
    ::close(fd);
    return ntohs(address.sin_port);
}

ChildProcess::ChildProcess(std::vector<std::string> argv, std::vector<std::string> extra_env,
                           std::optional<fs::path> log_file) {
    m_pid = ::fork();
    if (m_pid < 0) {
        throw std::system_error(errno, std::generic_category(), "fork");
    }
    if (m_pid == 0) {
        for (const auto& entry : extra_env) {
            ::putenv(const_cast<char*>(entry.c_str()));
        }
        if (log_file) {
            const int fd = ::open(log_file->c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                ::dup2(fd, STDOUT_FILENO);
                ::dup2(fd, STDERR_FILENO);
                ::close(fd);
            }
        }
        std::vector<char*> args;
        for (auto& arg : argv) {
            args.push_back(arg.data());
        }
        args.push_back(nullptr);
        ::execvp(args[0], args.data());
        ::_exit(127);
    }
}

ChildProcess::~ChildProcess() {
    if (m_pid > 0 && !m_status) {
        stop(std::chrono::seconds(3));
    }
}

bool ChildProcess::running() {
    if (m_status) {
        return false;
    }
    int status = 0;
    const int r = ::waitpid(m_pid, &status, WNOHANG);
    if (r == m_pid) {
        m_status = status;
        return false;
    }
    return true;
}

int ChildProcess::stop(std::chrono::milliseconds grace) {
    if (running()) {
        ::kill(m_pid, SIGTERM);
        if (!wait_until([this] { return !running(); }, grace)) {
            ::kill(m_pid, SIGKILL);
            int status = 0;
            ::waitpid(m_pid, &status, 0);
            m_status = status;
        }
    }
    return m_status && WIFEXITED(*m_status) ? WEXITSTATUS(*m_status) : -1;
}

void ChildProcess::kill_hard() {
    if (running()) {
        ::kill(m_pid, SIGKILL);
        int status = 0;
        ::waitpid(m_pid, &status, 0);
        m_status = status;
    }
}

fs::path program_path(const std::string& name) {
    for (const char* sub : {"gsm-modem/modemsim", "firmware", "provisioning", "hsm", "tests", ""}) {
        const fs::path candidate = fs::path(OTPBOX_BINARY_DIR) / sub / name;
        if (fs::exists(candidate)) {
            return candidate;
        }
    }
    return fs::path(OTPBOX_BINARY_DIR) / name;
}

std::optional<std::string> outbox_code(const fs::path& outbox, const std::string& number_suffix,
                                       std::size_t nth, std::chrono::milliseconds timeout) {
    std::optional<std::string> code;
    wait_until(
        [&] {
            std::istringstream lines(read_file(outbox));
            std::string line;
            std::size_t seen = 0;
            while (std::getline(lines, line)) {
                const auto sms = boost::json::parse(line).as_object();
                const std::string to(sms.at("to").as_string());
                if (!to.ends_with(number_suffix) || ++seen != nth) {
                    continue;
                }
                const std::string text(sms.at("text").as_string());
                std::smatch match;
                if (std::regex_search(text, match, std::regex(R"(\b\d{6,8}\b)"))) {
                    code = match.str();
                }
                return true;
            }
            return false;
        },
        timeout, std::chrono::milliseconds(100));
    return code;
}

}  // namespace otpbox::test
