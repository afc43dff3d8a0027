// TLS handshakes per second and requests per second on a kept-alive
// connection, otpboxd against `openssl s_server` on the same machine,
// measured in one run (bench/support/rounds.hpp). Prints otpboxd's rates as
// ratios of s_server's.
//
// Every server gets a certificate of the same development CA for an ECDSA
// P-256 key and requires the portal's client certificate; the client offers
// TLS 1.3 with TLS_AES_256_GCM_SHA384 over P-256 only, and takes no session
// tickets. s_server signs with a key file. otpboxd runs twice, as two
// provisioned instances: one with its server key in the SoftHSM token (every
// handshake's signature goes through PKCS#11, which is part of its cost), one
// with the key file s_server has.
//
// s_server serves one connection at a time, so the comparison uses one
// client; four clients compare otpboxd's HSM key with its key file. Client
// and servers all run on one CPU (use_one_cpu). A
// request to otpboxd is a GET of an unknown path: a short 404 from the
// router, no handler work. s_server runs with -rev and answers a line of the
// same length with that line reversed.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "modem_simulator.hpp"
#include "rounds.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using otpbox::bench::Clock;
using otpbox::bench::measure;
using namespace std::chrono_literals;

constexpr unsigned kParallelClients = 4;
constexpr const char* kSuite = "TLS_AES_256_GCM_SHA384";
constexpr const char* kGroup = "P-256";
constexpr std::string_view kHttpRequest = "GET /bench HTTP/1.1\r\nHost: localhost\r\n\r\n";

using SslCtxPtr = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;

std::runtime_error failure(const std::string& what) {
    std::string reason;
    if (const unsigned long code = ERR_get_error(); code != 0) {
        char text[256];
        ERR_error_string_n(code, text, sizeof(text));
        reason = std::string(": ") + text;
    }
    ERR_clear_error();
    return std::runtime_error(what + reason);
}

void run(const std::string& command) {
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

// Writes a 0600 file beside path and renames it over path.
void replace_text(const fs::path& path, const std::string& text) {
    const fs::path next = path.string() + ".next";
    std::ofstream(next) << text;
    fs::permissions(next, fs::perms::owner_read | fs::perms::owner_write);
    fs::rename(next, path);
}

class TempDir {
  public:
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "otpbox-bench-tls-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        m_path = pattern;
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(m_path, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    [[nodiscard]] const fs::path& path() const { return m_path; }

  private:
    fs::path m_path;
};

// A program started in the background with its output in a log file, and
// stopped by its pid: SIGTERM, then SIGKILL after a grace time.
class Child {
  public:
    Child(const std::vector<std::string>& argv, const fs::path& log) {
        std::vector<char*> args;
        for (const auto& arg : argv) {
            args.push_back(const_cast<char*>(arg.c_str()));
        }
        args.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                         0600);
        posix_spawn_file_actions_adddup2(&actions, 1, 2);
        const int error = ::posix_spawn(&m_pid, args[0], &actions, nullptr, args.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        if (error != 0) {
            throw std::runtime_error("cannot start " + argv[0]);
        }
    }
    ~Child() {
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
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

  private:
    pid_t m_pid = -1;
};

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

int connect_loopback(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
        ::close(fd);
        throw std::runtime_error("cannot connect to port " + std::to_string(port));
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

// The portal's side: TLS 1.3 only, one suite, one group, the development CA
// as the only trust anchor, no session resumption (neither server offers it).
SslCtxPtr client_context(const fs::path& pki) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()), &SSL_CTX_free);
    SSL_CTX* c = ctx.get();
    if (c == nullptr || SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_ciphersuites(c, kSuite) != 1 || SSL_CTX_set1_groups_list(c, kGroup) != 1 ||
        SSL_CTX_load_verify_locations(c, (pki / "ca.pem").c_str(), nullptr) != 1 ||
        SSL_CTX_use_certificate_chain_file(c, (pki / "portal.crt").c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(c, (pki / "portal.key").c_str(), SSL_FILETYPE_PEM) != 1) {
        throw failure("client TLS context");
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
    return ctx;
}

// One client connection, handshake done on construction.
class TlsConnection {
  public:
    TlsConnection(SSL_CTX* ctx, std::uint16_t port)
        : m_fd(connect_loopback(port)), m_ssl(SSL_new(ctx)) {
        if (m_ssl == nullptr || SSL_set_fd(m_ssl, m_fd) != 1 || SSL_connect(m_ssl) != 1) {
            cleanup();
            throw failure("TLS handshake with port " + std::to_string(port));
        }
    }
    ~TlsConnection() {
        SSL_shutdown(m_ssl);
        cleanup();
    }
    TlsConnection(const TlsConnection&) = delete;
    TlsConnection& operator=(const TlsConnection&) = delete;

    void write(std::string_view data) {
        if (SSL_write(m_ssl, data.data(), static_cast<int>(data.size())) <= 0) {
            throw failure("TLS write");
        }
    }

    // Reads until `done` finds a whole answer in what has arrived; returns it.
    std::string read_until(const std::function<std::size_t(std::string_view)>& done) {
        for (;;) {
            if (const std::size_t length = done(m_buffer); length != 0) {
                std::string answer = m_buffer.substr(0, length);
                m_buffer.erase(0, length);
                return answer;
            }
            char chunk[4096];
            const int got = SSL_read(m_ssl, chunk, sizeof(chunk));
            if (got <= 0) {
                throw failure("TLS read (the server closed the connection)");
            }
            m_buffer.append(chunk, static_cast<std::size_t>(got));
        }
    }

    [[nodiscard]] X509* peer_certificate() const { return SSL_get0_peer_certificate(m_ssl); }

  private:
    // A shutdown after the server has closed leaves errors in this thread's
    // queue; they belong to no later call.
    void cleanup() {
        SSL_free(m_ssl);
        ::close(m_fd);
        ERR_clear_error();
    }

    int m_fd;
    SSL* m_ssl;
    std::string m_buffer;
};

// The length of a whole HTTP/1.1 answer at the start of data, 0 if incomplete.
std::size_t http_answer_length(std::string_view data) {
    const auto header_end = data.find("\r\n\r\n");
    if (header_end == std::string_view::npos) {
        return 0;
    }
    const auto field = data.substr(0, header_end).find("Content-Length: ");
    if (field == std::string_view::npos) {
        throw std::runtime_error("an answer without Content-Length");
    }
    const std::size_t body = std::strtoul(data.data() + field + 16, nullptr, 10);
    const std::size_t total = header_end + 4 + body;
    return data.size() >= total ? total : 0;
}

std::size_t line_length(std::string_view data) {
    const auto end = data.find('\n');
    return end == std::string_view::npos ? 0 : end + 1;
}

// A server under test and how one request goes to it.
struct Target {
    std::string name;
    std::uint16_t port = 0;
    bool http = true;

    void request(TlsConnection& connection) const {
        if (http) {
            connection.write(kHttpRequest);
            const auto answer = connection.read_until(http_answer_length);
            if (answer.rfind("HTTP/1.1 404", 0) != 0) {
                throw std::runtime_error(name + " answered " + answer.substr(0, 20));
            }
            return;
        }
        // A line as long as the HTTP request, without the line ends inside it.
        static const std::string line = std::string(kHttpRequest.size() - 1, 'x') + "\n";
        connection.write(line);
        connection.read_until(line_length);
    }
};

X509Ptr read_certificate(const fs::path& path) {
    FILE* file = std::fopen(path.c_str(), "r");
    if (file == nullptr) {
        throw std::runtime_error("cannot read " + path.string());
    }
    X509Ptr certificate(PEM_read_X509(file, nullptr, nullptr, nullptr), &X509_free);
    std::fclose(file);
    if (!certificate) {
        throw failure("reading " + path.string());
    }
    return certificate;
}

// Waits until target serves `expected`: it has started, and with the key it
// is meant to have.
void wait_for_certificate(SSL_CTX* ctx, const Target& target, const fs::path& expected) {
    const auto wanted = read_certificate(expected);
    const auto deadline = Clock::now() + 30s;
    while (Clock::now() < deadline) {
        try {
            TlsConnection connection(ctx, target.port);
            target.request(connection);
            if (X509_cmp(connection.peer_certificate(), wanted.get()) == 0) {
                return;
            }
        } catch (const std::exception&) {
            ERR_clear_error();  // not serving yet
        }
        std::this_thread::sleep_for(200ms);
    }
    throw std::runtime_error(target.name + " did not serve " + expected.string());
}

// The first failure any client met. A work must not throw from a round's
// threads (that would end the program with its servers still running), so
// it records the failure and the run stops after the round.
class Failures {
  public:
    void record(const std::exception& error) {
        const std::lock_guard lock(m_mutex);
        if (m_first.empty()) {
            m_first = error.what();
        }
    }
    void throw_if_any() {
        const std::lock_guard lock(m_mutex);
        if (!m_first.empty()) {
            throw std::runtime_error(m_first);
        }
    }

  private:
    std::mutex m_mutex;
    std::string m_first;
};

// A new connection and one request per operation, so the server has checked
// the client's certificate (in TLS 1.3 it does so after the client's
// handshake has ended) before the next connection starts.
struct HandshakeWork {
    SSL_CTX* ctx;
    const Target& target;
    Failures& failures;

    int prepare(unsigned) { return 0; }
    void run(int&) {
        try {
            TlsConnection connection(ctx, target.port);
            target.request(connection);
        } catch (const std::exception& error) {
            failures.record(error);
        }
    }
};

// Requests on one connection per client, opened before the round.
struct RequestWork {
    SSL_CTX* ctx;
    const Target& target;
    Failures& failures;

    std::unique_ptr<TlsConnection> prepare(unsigned) {
        try {
            return std::make_unique<TlsConnection>(ctx, target.port);
        } catch (const std::exception& error) {
            failures.record(error);
            return nullptr;
        }
    }
    void run(std::unique_ptr<TlsConnection>& connection) {
        try {
            if (!connection) {
                throw std::runtime_error(target.name + ": no connection");
            }
            target.request(*connection);
        } catch (const std::exception& error) {
            failures.record(error);
            connection.reset();
        }
    }
};

// The development instance, provisioned into dir by otpbox-provision with its
// port changed to a free one (never 8443); returns the port.
std::uint16_t provision(const fs::path& dir) {
    run(std::string(OTPBOX_PROVISION_PATH) + " dev --dir '" + dir.string() + "' >'" + dir.string() +
        ".provision.log' 2>&1");
    const std::uint16_t port = free_port();
    const auto config = dir / "otpbox.toml";
    replace_text(config, std::regex_replace(read_text(config), std::regex("port = 8443"),
                                            "port = " + std::to_string(port)));
    return port;
}

// A key file and a certificate for it from the development CA in pki, with
// the server profile that provisioning gives the HSM key's certificate.
void make_file_identity(const fs::path& pki) {
    const auto base = (pki / "file-server").string();
    run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout '" + base +
        ".key' -subj /CN=localhost -out '" + base + ".csr' 2>/dev/null");
    run(std::string(OTPBOX_PROVISION_PATH) + " sign-csr --pki '" + pki.string() + "' --csr '" +
        base + ".csr' >'" + base + ".crt'");
}

// Has the instance in dir serve the key file of make_file_identity instead of
// its HSM key.
void use_file_key(const fs::path& dir) {
    const auto path = dir / "otpbox.toml";
    const auto config = read_text(path);
    auto text = std::regex_replace(config, std::regex("certificate = \"pki/server.crt\""),
                                   "certificate = \"pki/file-server.crt\"");
    text =
        std::regex_replace(text, std::regex("key_label = [^\n]*"), "key = \"pki/file-server.key\"");
    if (text == config) {
        throw std::runtime_error("otpbox.toml has no certificate and key_label to replace");
    }
    replace_text(path, text);
}

// The folder of the instance's modem link (otpbox.toml names modem/modem0).
fs::path modem_dir(const fs::path& dir) {
    fs::create_directories(dir / "modem");
    return dir / "modem";
}

// otpboxd on a provisioned instance, with its modem simulator.
class Daemon {
  public:
    explicit Daemon(const fs::path& dir)
        : m_modem(modem_dir(dir), "modem0", 0ms),
          m_daemon({OTPBOXD_PATH, "--config", (dir / "otpbox.toml").string()},
                   dir / "otpboxd.log") {}

  private:
    otpbox::bench::ModemSimulator m_modem;
    Child m_daemon;
};

Child start_s_server(std::uint16_t port, const fs::path& pki) {
    std::vector<std::string> argv{"/usr/bin/openssl", "s_server", "-rev",
                                  "-quiet",           "-tls1_3",  "-verify_return_error"};
    const std::pair<std::string, std::string> options[] = {
        {"-accept", "127.0.0.1:" + std::to_string(port)},
        {"-cert", (pki / "file-server.crt").string()},
        {"-key", (pki / "file-server.key").string()},
        {"-CAfile", (pki / "ca.pem").string()},
        {"-Verify", "1"},  // a client certificate is required
        {"-ciphersuites", kSuite},
        {"-groups", kGroup},
        {"-num_tickets", "0"},  // no session tickets, as otpboxd
    };
    for (const auto& [option, value] : options) {
        argv.push_back(option);
        argv.push_back(value);
    }
    return Child(argv, pki.parent_path() / "s_server.log");
}

// One client against s_server, otpboxd with the HSM key and with the key file.
template <class Work>
void print_single_client(const char* what, SSL_CTX* ctx, const std::array<Target, 3>& targets,
                         Failures& failures) {
    Work reference{ctx, targets[0], failures};
    Work hsm_key{ctx, targets[1], failures};
    Work file_key{ctx, targets[2], failures};
    const auto measured = measure(1, reference, hsm_key, file_key);
    failures.throw_if_any();
    std::printf("%-34s %9.0f %9.0f %6.2f %9.0f %6.2f\n", what, measured.rate(0), measured.rate(1),
                measured.ratio(1, 0), measured.rate(2), measured.ratio(2, 0));
}

void print_parallel_handshakes(SSL_CTX* ctx, const std::array<Target, 3>& targets,
                               Failures& failures) {
    HandshakeWork hsm_key{ctx, targets[1], failures};
    HandshakeWork file_key{ctx, targets[2], failures};
    const auto measured = measure(kParallelClients, hsm_key, file_key);
    failures.throw_if_any();
    std::printf("otpboxd, %u clients, handshakes/s: HSM key %.0f, key file %.0f, ratio %.2f\n",
                kParallelClients, measured.rate(0), measured.rate(1), measured.ratio(0, 1));
}

// Pins this thread, and so the threads and programs it starts, to the last
// CPU it may use; returns that CPU. One client's rate is bound by how fast the
// turn passes between client and server. Across two CPUs that depends on
// whether the other one is idle (an idle virtual CPU wakes slowly), which moved
// s_server's echo rate between 15,000 and 45,000 a second from run to run; on
// one CPU every server pays the same hand-over, and the rates compare the CPU
// work each operation costs.
int use_one_cpu() {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (::sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
        throw std::runtime_error("sched_getaffinity failed");
    }
    int last = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &allowed)) {
            last = cpu;
        }
    }
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(last, &one);
    if (::sched_setaffinity(0, sizeof(one), &one) != 0) {
        throw std::runtime_error("sched_setaffinity failed");
    }
    return last;
}

// Two provisioned instances under dir, one serving the HSM key, one the key
// file s_server gets; returns s_server's, the HSM key's and the key file's
// targets.
std::array<Target, 3> make_instances(const fs::path& hsm_dir, const fs::path& file_dir) {
    const std::uint16_t hsm_port = provision(hsm_dir);
    make_file_identity(hsm_dir / "pki");
    // The second instance gets a copy of the first one's PKI before it is
    // provisioned, so one CA and one portal certificate serve for all three.
    fs::create_directories(file_dir);
    fs::copy(hsm_dir / "pki", file_dir / "pki", fs::copy_options::recursive);
    const std::uint16_t file_port = provision(file_dir);
    use_file_key(file_dir);
    return {Target{"openssl s_server", free_port(), false},
            Target{"otpboxd (HSM key)", hsm_port, true},
            Target{"otpboxd (key file)", file_port, true}};
}

void print_header(int cpu) {
    std::printf(
        "TLS 1.3 %s over %s, ECDSA P-256 certificates, client certificate required; "
        "all on CPU %d\n",
        kSuite, kGroup, cpu);
    std::printf("%-34s %9s %9s %6s %9s %6s\n", "1 client", "s_server", "otpboxd", "ratio",
                "otpboxd", "ratio");
    std::printf("%-34s %9s %9s %6s %9s %6s\n", "", "key file", "HSM key", "", "key file", "");
}

int bench() {
    const int cpu = use_one_cpu();
    const TempDir temp;
    const auto hsm_dir = temp.path() / "hsm-key";
    const auto file_dir = temp.path() / "file-key";
    const auto pki = hsm_dir / "pki";
    const auto targets = make_instances(hsm_dir, file_dir);

    const Child s_server = start_s_server(targets[0].port, pki);
    const Daemon hsm_daemon(hsm_dir);
    const Daemon file_daemon(file_dir);
    const auto ctx = client_context(pki);
    wait_for_certificate(ctx.get(), targets[0], pki / "file-server.crt");
    wait_for_certificate(ctx.get(), targets[1], pki / "server.crt");
    wait_for_certificate(ctx.get(), targets[2], pki / "file-server.crt");

    Failures failures;
    print_header(cpu);
    print_single_client<HandshakeWork>("handshakes/s (1 request each)", ctx.get(), targets,
                                       failures);
    print_single_client<RequestWork>("requests/s, kept-alive connection", ctx.get(), targets,
                                     failures);
    print_parallel_handshakes(ctx.get(), targets, failures);
    return 0;
}

}  // namespace

int main() {
    // A server closing first must be a failed read, not a signal.
    ::signal(SIGPIPE, SIG_IGN);
    try {
        return bench();
    } catch (const std::exception& error) {
        std::fprintf(stderr, "tls_load: %s\n", error.what());
        return 1;
    }
}
