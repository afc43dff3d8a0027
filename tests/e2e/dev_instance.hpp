#pragma once

// A whole appliance for end-to-end tests: provisioned by otpbox-provision
// into a temporary folder, the modem simulator on a pseudo-terminal, and
// otpboxd on a free port of 127.0.0.1. The tests talk to it with curl.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>

#include "test_support.hpp"

namespace otpbox::e2e {

struct HttpAnswer {
    int status = 0;  // 0: no HTTP answer (handshake refused)
    std::string body;
    std::string headers;

    [[nodiscard]] boost::json::object json() const { return boost::json::parse(body).as_object(); }
    [[nodiscard]] std::string field(const std::string& name) const {
        return std::string(json().at(name).as_string());
    }
};

// The response to a PINCard challenge: the values of the cells the login
// names, read off the grid the card's issuance answered with.
inline std::string answer_from_grid(const boost::json::object& card,
                                    const boost::json::object& login) {
    std::string response;
    for (const auto& cell : login.at("cells").as_array()) {
        const std::string name(cell.as_string());
        const auto column = static_cast<std::size_t>(name[0] - 'A');
        const auto row = static_cast<std::size_t>(std::stoi(name.substr(1)) - 1);
        response += card.at("grid").as_array().at(row).as_array().at(column).as_string();
    }
    return response;
}

// Holds a TCP port of 127.0.0.1 with a listening socket, as another program
// would, until release() or destruction. Close-on-exec, so that a daemon
// started meanwhile does not inherit it and keep the port.
class PortHolder {
  public:
    explicit PortHolder(std::uint16_t port)
        : m_fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        address.sin_port = htons(port);
        m_holding = m_fd >= 0 &&
                    ::bind(m_fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                    ::listen(m_fd, 1) == 0;
    }
    ~PortHolder() { release(); }
    PortHolder(const PortHolder&) = delete;
    PortHolder& operator=(const PortHolder&) = delete;

    [[nodiscard]] bool holding() const { return m_holding; }
    void release() {
        if (m_fd >= 0) {
            ::close(m_fd);
            m_fd = -1;
        }
        m_holding = false;
    }

  private:
    int m_fd;
    bool m_holding = false;
};

class DevInstance {
  public:
    DevInstance() {
        provision();
        start_simulator();
        start_daemon();
    }

    // For tests that provision and start the parts themselves.
    enum NotStarted { kNotStarted };
    explicit DevInstance(NotStarted) {}

    ~DevInstance() {
        daemon.reset();
        simulator.reset();
    }

    void provision() {
        const auto result = test::run_command(test::program_path("otpbox-provision").string() +
                                              " dev --dir " + root().string() + " 2>&1");
        if (result.status != 0) {
            throw std::runtime_error("otpbox-provision failed: " + result.output);
        }
        // Tests never use 8443: each takes a free port.
        auto config = test::read_file(root() / "otpbox.toml");
        config =
            std::regex_replace(config, std::regex("port = 8443"), "port = " + std::to_string(port));
        test::write_file(root() / "otpbox.toml", config, 0600);
    }

    // Fault options of otpbox-modemsim ("--sim-pin", "2468") come after the
    // link and outbox.
    void start_simulator(const std::vector<std::string>& options = {}) {
        std::filesystem::create_directories(root() / "modem");
        std::vector<std::string> argv{test::program_path("otpbox-modemsim").string(), "--link",
                                      (root() / "modem/modem0").string(), "--outbox",
                                      outbox().string()};
        argv.insert(argv.end(), options.begin(), options.end());
        simulator = std::make_unique<test::ChildProcess>(argv, std::vector<std::string>{},
                                                         root() / "modemsim.log");
        if (!test::wait_until([&] { return std::filesystem::exists(root() / "modem/modem0"); },
                              std::chrono::seconds(10))) {
            throw std::runtime_error("the modem simulator did not come up");
        }
    }

    // Unless told not to, returns once the API answers (a daemon meant to
    // stay unprovisioned never does). env: NAME=value settings added to the
    // test's own.
    void start_daemon(bool wait_for_api = true, const std::vector<std::string>& env = {}) {
        daemon = std::make_unique<test::ChildProcess>(
            std::vector<std::string>{test::program_path("otpboxd").string(), "--config",
                                     (root() / "otpbox.toml").string()},
            env, daemon_log());
        if (!wait_for_api) {
            return;
        }
        if (!test::wait_until([&] { return call("GET", "/v1/health").status != 0; },
                              std::chrono::seconds(30), std::chrono::milliseconds(200))) {
            throw std::runtime_error("otpboxd did not answer: " +
                                     test::read_file(root() / "otpboxd.log"));
        }
    }

    // Replaces the first occurrence of from in otpbox.toml.
    void replace_in_config(const std::string& from, const std::string& to) const {
        auto text = test::read_file(root() / "otpbox.toml");
        const auto at = text.find(from);
        if (at == std::string::npos) {
            throw std::runtime_error("not in otpbox.toml: " + from);
        }
        text.replace(at, from.size(), to);
        test::write_file(root() / "otpbox.toml", text, 0600);
    }

    [[nodiscard]] const std::filesystem::path& root() const { return m_dir.path(); }
    [[nodiscard]] std::filesystem::path daemon_log() const { return root() / "otpboxd.log"; }
    [[nodiscard]] std::filesystem::path outbox() const { return root() / "modem/outbox.jsonl"; }
    [[nodiscard]] std::string url(const std::string& path) const {
        return "https://localhost:" + std::to_string(port) + path;
    }

    // One request with curl as the given client ("portal", "monitor",
    // "intruder", or "" for none).
    HttpAnswer call(const std::string& method, const std::string& path,
                    const std::optional<std::string>& json = std::nullopt,
                    const std::string& client = "portal", const std::string& extra = "") const {
        const auto body_file = root() / "curl.body";
        const auto header_file = root() / "curl.headers";
        std::string command = "curl -s -o '" + body_file.string() + "' -D '" +
                              header_file.string() + "' -w '%{http_code}' -X " + method +
                              " --cacert '" + (root() / "pki/ca.pem").string() + "'";
        if (!client.empty()) {
            command += " --cert '" + (root() / "pki" / (client + ".crt")).string() + "' --key '" +
                       (root() / "pki" / (client + ".key")).string() + "'";
        }
        if (json) {
            test::write_file(root() / "curl.request", *json);
            command += " -H 'Content-Type: application/json' --data-binary '@" +
                       (root() / "curl.request").string() + "'";
        }
        command += " " + extra + " '" + url(path) + "' 2>/dev/null";
        std::filesystem::remove(body_file);
        std::filesystem::remove(header_file);
        const auto result = test::run_command(command);
        HttpAnswer answer;
        answer.status = std::atoi(result.output.c_str());
        answer.body = test::read_file(body_file);
        answer.headers = test::read_file(header_file);
        return answer;
    }

    // The code of the nth SMS to a number whose digits end with suffix.
    [[nodiscard]] std::optional<std::string> sms_code(const std::string& suffix,
                                                      std::size_t nth = 1) const {
        return test::outbox_code(outbox(), suffix, nth, std::chrono::seconds(30));
    }

    std::uint16_t port = test::free_port();
    std::unique_ptr<test::ChildProcess> simulator;
    std::unique_ptr<test::ChildProcess> daemon;

  private:
    test::TempDir m_dir;
};

}  // namespace otpbox::e2e
