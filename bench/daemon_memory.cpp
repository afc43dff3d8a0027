// otpboxd's resident memory (VmRSS of /proc/<pid>/status) idle after start,
// and with 1,000 mTLS connections open, each with its handshake done and one
// request answered, kept alive and idle. Prints both in MB (10^6 bytes) and
// as ratios of the target, 50 MB, which is the reference here.
//
// The instance is provisioned as tls_load's (server key in the SoftHSM
// token). Its [api] max_connections is set to 1,100 so that the run does not
// lean on the default (2,000), and idle_timeout_seconds to 600 so that no
// connection is closed while the others open on a slow machine. otpboxd has
// the open-file limit of this process: the soft RLIMIT_NOFILE is raised to
// the hard one, which must leave room for the connections on both ends.
//
// A request is a GET of an unknown path (a 404 from the router): it makes
// sure the server has checked the client's certificate, which in TLS 1.3
// comes after the client's side of the handshake has ended. After the
// second reading every connection answers once more, to show that all of
// them were still open.

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_main.hpp"
#include "instance.hpp"
#include "tls_client.hpp"

namespace {

namespace fs = std::filesystem;
using namespace otpbox::bench;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kConnections = 1000;
constexpr std::size_t kMaxConnections = 1100;
constexpr rlim_t kSpareDescriptors = 200;  // the daemon's own files, the client's
constexpr auto kSettle = 2s;
constexpr double kTargetMb = 50;

void raise_descriptor_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        throw std::runtime_error("getrlimit(RLIMIT_NOFILE) failed");
    }
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < kConnections + kSpareDescriptors) {
        throw std::runtime_error("the hard open-file limit (" + std::to_string(limit.rlim_max) +
                                 ") leaves no room for " + std::to_string(kConnections) +
                                 " connections");
    }
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
        throw std::runtime_error("setrlimit(RLIMIT_NOFILE) failed");
    }
}

std::size_t open_descriptors(pid_t pid) {
    const fs::path fds = "/proc/" + std::to_string(pid) + "/fd";
    return static_cast<std::size_t>(
        std::distance(fs::directory_iterator(fds), fs::directory_iterator()));
}

void request_unknown_path(TlsConnection& connection) {
    const auto answer = http_request(connection, "GET", "/bench");
    if (answer.status != 404) {
        throw std::runtime_error("otpboxd answered " + std::to_string(answer.status));
    }
}

std::vector<std::unique_ptr<TlsConnection>> open_connections(SSL_CTX* ctx, std::uint16_t port) {
    std::vector<std::unique_ptr<TlsConnection>> connections;
    for (std::size_t i = 0; i < kConnections; ++i) {
        try {
            connections.push_back(std::make_unique<TlsConnection>(ctx, port));
            request_unknown_path(*connections.back());
        } catch (const std::exception& error) {
            throw std::runtime_error("connection " + std::to_string(i + 1) + ": " + error.what());
        }
    }
    return connections;
}

void check_still_open(std::vector<std::unique_ptr<TlsConnection>>& connections) {
    for (std::size_t i = 0; i < connections.size(); ++i) {
        try {
            request_unknown_path(*connections[i]);
        } catch (const std::exception& error) {
            throw std::runtime_error("connection " + std::to_string(i + 1) +
                                     " no longer answered after the reading: " + error.what());
        }
    }
}

void print_reading(const char* what, double mb) {
    std::printf("%-36s %6.1f MB  ratio %.2f  %s\n", what, mb, mb / kTargetMb,
                mb <= kTargetMb ? "met" : "not met");
}

int bench() {
    raise_descriptor_limit();
    const TempDir temp("memory");
    const auto dir = temp.path() / "instance";
    const std::uint16_t port = provision(dir);
    set_api_option(dir, "max_connections", std::to_string(kMaxConnections));
    set_api_option(dir, "idle_timeout_seconds", "600");

    const Daemon daemon(dir);
    const auto ctx = client_context(dir / "pki");
    wait_for_certificate(ctx.get(), port, "otpboxd", dir / "pki" / "server.crt",
                         request_unknown_path);
    std::this_thread::sleep_for(kSettle);
    const double idle = daemon.resident_bytes() / 1e6;

    const auto start = Clock::now();
    auto connections = open_connections(ctx.get(), port);
    const std::chrono::duration<double> took = Clock::now() - start;
    std::this_thread::sleep_for(kSettle);
    const double loaded = daemon.resident_bytes() / 1e6;
    const auto descriptors = open_descriptors(daemon.pid());
    check_still_open(connections);

    std::printf("otpboxd resident memory (VmRSS), MB of 10^6 bytes; target %.0f MB\n", kTargetMb);
    print_reading("idle after start", idle);
    print_reading((std::to_string(kConnections) + " connections open, idle").c_str(), loaded);
    std::printf(
        "per connection %.1f kB; %zu connections opened in %.1f s; daemon descriptors %zu\n",
        (loaded - idle) * 1e3 / kConnections, kConnections, took.count(), descriptors);
    return 0;
}

}  // namespace

int main() {
    return otpbox::bench::run_main("daemon_memory", bench);
}
