// TLS handshakes per second and requests per second on a kept-alive
// connection, otpboxd against `openssl s_server` on the same machine,
// measured in one run (bench/support/rounds.hpp). Prints otpboxd's rates as
// ratios of s_server's.
//
// Every server gets a certificate of the same development CA for an ECDSA
// P-256 key and requires the portal's client certificate; the client offers
// TLS 1.3 with TLS_AES_256_GCM_SHA384 over P-256 only, and takes no session
// tickets, except for the resumed handshakes, where it offers the session of
// a first connection again and again. s_server signs with a key file. otpboxd runs twice, as two
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

#include <sched.h>

#include <array>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>
#include <regex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bench_main.hpp"
#include "instance.hpp"
#include "rounds.hpp"
#include "tls_client.hpp"

namespace {

namespace fs = std::filesystem;
using namespace otpbox::bench;

constexpr unsigned kParallelClients = 4;
constexpr std::string_view kHttpRequest = "GET /bench HTTP/1.1\r\nHost: localhost\r\n\r\n";

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

// Waits until target serves `expected`: it has started, and with the key it
// is meant to have.
void wait_for_certificate(SSL_CTX* ctx, const Target& target, const fs::path& expected) {
    otpbox::bench::wait_for_certificate(
        ctx, target.port, target.name, expected,
        [&](TlsConnection& connection) { target.request(connection); });
}

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

// As HandshakeWork, offering a session kept from a first connection made
// before the round: each connection resumes it, without certificates or a
// signature. A connection that did not resume counts as a failure.
struct ResumeWork {
    SSL_CTX* ctx;
    const Target& target;
    Failures& failures;

    SessionPtr prepare(unsigned) {
        try {
            TlsConnection first(ctx, target.port);
            target.request(first);
            auto session = first.session();
            if (!session) {
                throw std::runtime_error(target.name + " sent no session ticket");
            }
            return session;
        } catch (const std::exception& error) {
            failures.record(error);
            return nullptr;
        }
    }
    void run(SessionPtr& session) {
        try {
            TlsConnection connection(ctx, target.port, session);
            target.request(connection);
            if (!connection.resumed()) {
                throw std::runtime_error(target.name + " did not resume the session");
            }
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

// A key file and a certificate for it from the development CA in pki, with
// the server profile that provisioning gives the HSM key's certificate.
void make_file_identity(const fs::path& pki) {
    const auto base = (pki / "file-server").string();
    run_command("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout '" +
                base + ".key' -subj /CN=localhost -out '" + base + ".csr' 2>/dev/null");
    sign_csr(pki, base + ".csr", base + ".crt");
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
        {"-num_tickets", "1"},  // one session ticket a handshake, as otpboxd
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
    const TempDir temp("tls");
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
    const auto resuming = client_context(pki, "portal", true);
    print_single_client<ResumeWork>("resumed handshakes/s (ticket)", resuming.get(), targets,
                                    failures);
    print_single_client<RequestWork>("requests/s, kept-alive connection", ctx.get(), targets,
                                     failures);
    print_parallel_handshakes(ctx.get(), targets, failures);
    return 0;
}

}  // namespace

int main() {
    return otpbox::bench::run_main("tls_load", bench);
}