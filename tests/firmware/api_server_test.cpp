// The mutual-TLS server against real clients: curl and openssl s_client as
// separate processes, raw sockets for silent and flooding clients, an Asio
// TLS client for a trickling one. Every server runs on 127.0.0.1 on a free
// port and is stopped by its test.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <thread>

#include "otpbox/firmware/api/server.hpp"
#include "test_pki.hpp"
#include "test_support.hpp"

namespace {

namespace net = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;
using otpbox::api::Request;
using otpbox::api::Response;
using otpbox::api::Role;
using otpbox::api::Server;
using otpbox::api::ServerLimits;
using otpbox::api::TlsConfig;
using otpbox::test::run_command;
using otpbox::test::TestPki;
using otpbox::test::wait_until;

const std::string& kPortal = otpbox::test::kPortalSubject;
const std::string& kMonitor = otpbox::test::kMonitorSubject;
const std::string& kRevoked = otpbox::test::kRevokedSubject;

struct WireAnswer {
    std::string status_line;
    std::string header;  // the fields, each line ending in CRLF
    std::string body;
};

// The value of a field in a header as WireAnswer keeps it, "" when absent.
std::string field_value(const std::string& header, const std::string& name) {
    const auto at = header.find(name + ": ");
    if (at == std::string::npos) {
        return "";
    }
    const auto start = at + name.size() + 2;
    return header.substr(start, header.find("\r\n", start) - start);
}

// Takes the next answer off the front of `rest`: its header, and then as many
// bytes of body as its Content-Length names, none for an answer to HEAD (RFC
// 9110 section 9.3.2). A server that sends a body to HEAD leaves it at the
// front of `rest`, where the next answer's status line should be.
WireAnswer next_answer(std::string& rest, bool to_head) {
    WireAnswer answer;
    const auto line_end = rest.find("\r\n");
    const auto header_end = rest.find("\r\n\r\n");
    if (line_end == std::string::npos || header_end == std::string::npos) {
        answer.status_line = rest;
        rest.clear();
        return answer;
    }
    answer.status_line = rest.substr(0, line_end);
    answer.header = rest.substr(line_end + 2, header_end - line_end);
    rest.erase(0, header_end + 4);
    if (!to_head) {
        const auto length = static_cast<std::size_t>(
            std::strtoul(field_value(answer.header, "Content-Length").c_str(), nullptr, 10));
        answer.body = rest.substr(0, length);
        rest.erase(0, std::min(length, rest.size()));
    }
    return answer;
}

// A request with the given lines between its request line and its end.
std::string request_with(const std::string& request_line, const std::string& fields) {
    return request_line + "\r\n" + fields + "\r\n";
}

// A TCP connection that sends nothing unless told to; closed on destruction.
class RawSocket {
  public:
    explicit RawSocket(std::uint16_t port) : m_fd(::socket(AF_INET, SOCK_STREAM, 0)) {
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        address.sin_port = htons(port);
        m_connected = ::connect(m_fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    }
    ~RawSocket() { ::close(m_fd); }
    RawSocket(const RawSocket&) = delete;
    RawSocket& operator=(const RawSocket&) = delete;

    [[nodiscard]] bool connected() const { return m_connected; }

    // True once the peer has closed (end of stream or reset) within the wait.
    [[nodiscard]] bool closed_within(std::chrono::milliseconds wait) const {
        pollfd ready{m_fd, POLLIN, 0};
        if (::poll(&ready, 1, static_cast<int>(wait.count())) != 1) {
            return false;
        }
        char byte = 0;
        return ::recv(m_fd, &byte, 1, MSG_DONTWAIT) <= 0;
    }

  private:
    int m_fd;
    bool m_connected = false;
};

// A blocking TLS client with the portal's certificate, for tests that drive
// one connection step by step.
class PortalConnection {
  public:
    PortalConnection(const std::string& ca, const std::string& name, std::uint16_t port)
        : m_context(make_context(ca, name)), m_stream(m_io, m_context) {
        m_stream.next_layer().connect({net::ip::make_address("127.0.0.1"), port});
        m_stream.handshake(net::ssl::stream_base::client);
    }

    [[nodiscard]] net::ssl::stream<net::ip::tcp::socket>& stream() { return m_stream; }

    // Sends a GET of /echo, in a TLS record of its own.
    void send() {
        const std::string request = "GET /echo HTTP/1.1\r\nHost: localhost\r\n\r\n";
        net::write(m_stream, net::buffer(request));
    }

    // Reads an answer: its status.
    unsigned read_answer() {
        boost::beast::http::response<boost::beast::http::string_body> response;
        boost::beast::http::read(m_stream, m_buffer, response);
        return response.result_int();
    }

    unsigned ask() {
        send();
        return read_answer();
    }

    // True once the server has closed the TCP connection within the wait,
    // without a TLS record before it.
    [[nodiscard]] bool closed_within(std::chrono::milliseconds wait) {
        pollfd ready{m_stream.next_layer().native_handle(), POLLIN, 0};
        if (::poll(&ready, 1, static_cast<int>(wait.count())) != 1) {
            return false;
        }
        char byte = 0;
        return ::recv(ready.fd, &byte, 1, MSG_DONTWAIT) <= 0;
    }

  private:
    static net::ssl::context make_context(const std::string& ca, const std::string& name) {
        net::ssl::context context(net::ssl::context::tls_client);
        context.load_verify_file(ca);
        context.use_certificate_chain_file(name + ".crt");
        context.use_private_key_file(name + ".key", net::ssl::context::pem);
        return context;
    }

    net::io_context m_io;
    net::ssl::context m_context;
    net::ssl::stream<net::ip::tcp::socket> m_stream;
    boost::beast::flat_buffer m_buffer;
};

class ApiServerTest : public ::testing::Test {
  protected:
    void TearDown() override { stop_server(); }

    static std::string pki(const std::string& name) { return TestPki::file(name); }

    [[nodiscard]] std::unique_ptr<PortalConnection> connect_portal() const {
        return std::make_unique<PortalConnection>(pki("ca.pem"), pki("portal"), m_port);
    }

    static TlsConfig tls_config() {
        TlsConfig tls;
        tls.ca_file = pki("ca.pem");
        tls.certificate_file = pki("server.crt");
        tls.key_file = pki("server.key");
        tls.clients = {
            {kPortal, Role::portal}, {kMonitor, Role::monitor}, {kRevoked, Role::portal}};
        return tls;
    }

    static ServerLimits short_limits() {
        ServerLimits limits;
        limits.handshake_timeout = 2s;
        limits.request_timeout = 2s;
        limits.idle_timeout = 5s;
        return limits;
    }

    void start_server(const TlsConfig& tls = tls_config(), ServerLimits limits = short_limits()) {
        m_server =
            std::make_unique<Server>(m_io, "127.0.0.1", 0, tls, limits,
                                     [this](const Request& request) { return echo(request); });
        m_server->set_access_log([this](const otpbox::api::AccessEntry& entry) {
            const std::lock_guard lock(m_log_mutex);
            m_access.push_back(entry);
        });
        m_server->start();
        m_port = m_server->port();
        for (int i = 0; i < 2; ++i) {
            m_threads.emplace_back([this] { m_io.run(); });
        }
    }

    void stop_server() {
        if (m_server) {
            m_server->stop();
        }
        m_work.reset();
        m_io.stop();
        for (auto& thread : m_threads) {
            thread.join();
        }
        m_threads.clear();
        m_server.reset();
    }

    Response echo(const Request& request) {
        ++m_calls;
        if (request.target == "/throw") {
            throw std::runtime_error("handler failure");
        }
        if (request.target == "/refuse") {
            auto refused = otpbox::api::Response{};
            refused.status = 405;
            refused.body = R"({"error":"method_not_allowed","message":"not here"})";
            refused.headers.emplace_back("Allow", "GET");
            return refused;
        }
        if (request.target == "/block") {
            // Holds this connection's handler until the test releases it.
            std::unique_lock lock(m_block_mutex);
            m_blocked = true;
            m_blocked_thread = std::this_thread::get_id();
            m_block_changed.notify_all();
            m_block_changed.wait_for(lock, 20s, [this] { return m_released; });
        }
        Response response;
        response.body = json::serialize(
            json::object{{"method", request.method_name},
                         {"target", request.target},
                         {"role", request.role == Role::portal ? "portal" : "monitor"},
                         {"subject", request.client_subject},
                         {"content_type", request.content_type},
                         {"idempotency_key", request.idempotency_key.value_or("")},
                         {"has_body", request.has_body},
                         {"body_size", request.body.size()},
                         {"body", request.body.size() <= 64 ? request.body : std::string("...")}});
        return response;
    }

    // True once a /block handler holds its worker (within 15 s).
    bool wait_for_blocked() {
        std::unique_lock lock(m_block_mutex);
        return m_block_changed.wait_for(lock, 15s, [this] { return m_blocked; });
    }

    std::thread::id blocked_thread() {
        const std::lock_guard lock(m_block_mutex);
        return m_blocked_thread;
    }

    // Lets every /block handler return.
    void release_blocked() {
        {
            const std::lock_guard lock(m_block_mutex);
            m_released = true;
        }
        m_block_changed.notify_all();
    }

    struct Answer {
        int exit = -1;
        unsigned status = 0;
        std::string body;
    };

    // curl as the client; `client` names a certificate of the test PKI or is
    // empty for none.
    [[nodiscard]] Answer curl(const std::string& client, const std::string& options,
                              const std::string& path = "/echo") const {
        std::string command = "curl -sS --max-time 15 --cacert '" + pki("ca.pem") + "' ";
        if (!client.empty()) {
            command +=
                "--cert '" + pki(client + ".crt") + "' --key '" + pki(client + ".key") + "' ";
        }
        command += options + " -w '\\n%{http_code}' 'https://localhost:" + std::to_string(m_port) +
                   path + "' 2>/dev/null";
        const auto result = run_command(command);
        Answer answer;
        answer.exit = result.status;
        const auto split = result.output.rfind('\n');
        if (split != std::string::npos) {
            answer.body = result.output.substr(0, split);
            answer.status = static_cast<unsigned>(std::atoi(result.output.c_str() + split + 1));
        }
        return answer;
    }

    [[nodiscard]] static json::object parse(const std::string& body) {
        return json::parse(body).as_object();
    }

    // openssl s_client's exit status: 0 when the handshake succeeded.
    [[nodiscard]] int s_client(const std::string& options) const {
        const std::string command =
            "timeout 15 openssl s_client -connect 127.0.0.1:" + std::to_string(m_port) +
            " -servername localhost -CAfile '" + pki("ca.pem") + "' -cert '" + pki("portal.crt") +
            "' -key '" + pki("portal.key") + "' " + options + " </dev/null >/dev/null 2>&1";
        return run_command(command).status;
    }

    // Sends `text` (printf escapes) as the portal over TLS and returns all the
    // server answered before it closed.
    [[nodiscard]] std::string raw_tls_exchange(const std::string& text) const {
        return run_command("printf '" + text +
                           "' | timeout 15 openssl s_client -quiet -connect 127.0.0.1:" +
                           std::to_string(m_port) + " -CAfile '" + pki("ca.pem") + "' -cert '" +
                           pki("portal.crt") + "' -key '" + pki("portal.key") + "' 2>/dev/null")
            .output;
    }

    // Sends `bytes` as they are as the portal over TLS and returns all the
    // server answered before it closed.
    [[nodiscard]] std::string raw_tls_bytes(const std::string& bytes) const {
        const auto file = TestPki::dir().path() / "raw-request.txt";
        otpbox::test::write_file(file, bytes);
        return run_command("timeout 15 openssl s_client -quiet -connect 127.0.0.1:" +
                           std::to_string(m_port) + " -CAfile '" + pki("ca.pem") + "' -cert '" +
                           pki("portal.crt") + "' -key '" + pki("portal.key") + "' <'" +
                           file.string() + "' 2>/dev/null")
            .output;
    }

    net::io_context m_io;
    net::executor_work_guard<net::io_context::executor_type> m_work = net::make_work_guard(m_io);
    std::vector<std::thread> m_threads;
    std::unique_ptr<Server> m_server;
    std::uint16_t m_port = 0;
    std::atomic<int> m_calls{0};
    std::mutex m_block_mutex;
    std::condition_variable m_block_changed;
    bool m_blocked = false;
    std::thread::id m_blocked_thread;
    bool m_released = false;
    std::mutex m_log_mutex;
    std::vector<otpbox::api::AccessEntry> m_access;
};

TEST_F(ApiServerTest, PortalGetsInWithRoleAndSubject) {
    start_server();
    const auto answer = curl("portal", "-H 'Idempotency-Key: key-1'", "/echo?x=1");
    ASSERT_EQ(answer.exit, 0);
    EXPECT_EQ(answer.status, 200u);
    const auto body = parse(answer.body);
    EXPECT_EQ(body.at("role"), "portal");
    EXPECT_EQ(body.at("subject").as_string(), kPortal);
    EXPECT_EQ(body.at("method"), "GET");
    EXPECT_EQ(body.at("target"), "/echo?x=1");
    EXPECT_EQ(body.at("idempotency_key"), "key-1");
    EXPECT_EQ(body.at("has_body"), false);
}

TEST_F(ApiServerTest, MonitorGetsMonitorRole) {
    start_server();
    const auto answer = curl("monitor", "");
    ASSERT_EQ(answer.exit, 0);
    EXPECT_EQ(parse(answer.body).at("role"), "monitor");
    EXPECT_EQ(parse(answer.body).at("subject").as_string(), kMonitor);
}

TEST_F(ApiServerTest, IntruderFromAnotherCaFailsHandshake) {
    start_server();
    const auto answer = curl("intruder", "");
    EXPECT_NE(answer.exit, 0);
    EXPECT_EQ(answer.status, 0u);
    EXPECT_EQ(m_calls, 0);
}

TEST_F(ApiServerTest, NoClientCertificateFailsHandshake) {
    start_server();
    EXPECT_NE(curl("", "").exit, 0);
    EXPECT_EQ(m_calls, 0);
}

// The refusals are counted, with OpenSSL's reason for the last one; a
// client that got in is not.
TEST_F(ApiServerTest, RefusedHandshakesAreCountedWithTheLastReason) {
    start_server();
    EXPECT_NE(curl("", "").exit, 0);
    EXPECT_NE(curl("intruder", "").exit, 0);
    EXPECT_EQ(curl("portal", "").status, 200u);
    ASSERT_TRUE(wait_until([&] { return m_server->handshakes().refused == 2; }, 5s));
    const auto handshakes = m_server->handshakes();
    EXPECT_EQ(handshakes.full, 1u);
    EXPECT_NE(handshakes.last_refusal.find("certificate verify failed"), std::string::npos)
        << handshakes.last_refusal;
}

TEST_F(ApiServerTest, UnlistedSubjectOfTrustedCaFailsHandshake) {
    start_server();
    EXPECT_NE(curl("stranger", "").exit, 0);
    EXPECT_EQ(m_calls, 0);
}

TEST_F(ApiServerTest, CertificateWithoutClientUsageFailsHandshake) {
    auto tls = tls_config();
    tls.clients.push_back({"CN=otpbox-server-only,O=otpbox development", Role::portal});
    start_server(tls);
    EXPECT_NE(curl("server-only", "").exit, 0);
    EXPECT_EQ(m_calls, 0);
}

TEST_F(ApiServerTest, RevokedClientFailsHandshakeWithCrl) {
    auto tls = tls_config();
    tls.crl_file = pki("crl.pem");
    start_server(tls);
    EXPECT_NE(curl("revoked", "").exit, 0);
    EXPECT_EQ(curl("portal", "").status, 200u);
}

TEST_F(ApiServerTest, RevokedClientGetsInWithoutCrl) {
    start_server();
    EXPECT_EQ(curl("revoked", "").status, 200u);
}

TEST_F(ApiServerTest, BodyOverLimitIs413) {
    start_server();
    const auto file = TestPki::dir().path() / "big.json";
    otpbox::test::write_file(file, std::string(17 * 1024, 'x'));
    const auto answer =
        curl("portal", "-H 'Content-Type: application/json' --data-binary @" + file.string());
    ASSERT_EQ(answer.exit, 0);
    EXPECT_EQ(answer.status, 413u);
    EXPECT_EQ(parse(answer.body).at("error"), "too_large");
    EXPECT_EQ(m_calls, 0);
}

TEST_F(ApiServerTest, ChunkedBodyOverLimitIs413) {
    start_server();
    const auto file = TestPki::dir().path() / "big-chunked.json";
    otpbox::test::write_file(file, std::string(17 * 1024, 'x'));
    const auto answer =
        curl("portal", "-H 'Transfer-Encoding: chunked' --data-binary @" + file.string());
    ASSERT_EQ(answer.exit, 0);
    EXPECT_EQ(answer.status, 413u);
    EXPECT_EQ(m_calls, 0);
}

TEST_F(ApiServerTest, BodyAtLimitReachesHandler) {
    start_server();
    const auto file = TestPki::dir().path() / "limit.json";
    otpbox::test::write_file(file, std::string(16 * 1024, 'y'));
    // Over 1 KiB curl asks "Expect: 100-continue" first.
    const auto answer =
        curl("portal", "-H 'Content-Type: application/json' --data-binary @" + file.string());
    ASSERT_EQ(answer.exit, 0);
    EXPECT_EQ(answer.status, 200u);
    EXPECT_EQ(parse(answer.body).at("body_size"), 16 * 1024);
    EXPECT_EQ(parse(answer.body).at("has_body"), true);
}

TEST_F(ApiServerTest, BadContentIsPassedToHandler) {
    start_server();
    const auto answer =
        curl("portal", "-X PUT -H 'Content-Type: text/plain' --data-binary '{nope'");
    ASSERT_EQ(answer.exit, 0);
    const auto body = parse(answer.body);
    EXPECT_EQ(body.at("method"), "PUT");
    EXPECT_EQ(body.at("content_type"), "text/plain");
    EXPECT_EQ(body.at("body"), "{nope");
    EXPECT_EQ(body.at("has_body"), true);
}

TEST_F(ApiServerTest, AnswerHeadersAreJsonNoStoreAndNoServer) {
    start_server();
    auto answer = curl("portal", "-i");
    ASSERT_EQ(answer.exit, 0);
    for (auto& c : answer.body) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    EXPECT_NE(answer.body.find("content-type: application/json"), std::string::npos) << answer.body;
    EXPECT_NE(answer.body.find("cache-control: no-store"), std::string::npos);
    EXPECT_NE(answer.body.find("content-length: "), std::string::npos);
    EXPECT_EQ(answer.body.find("server:"), std::string::npos);
}

TEST_F(ApiServerTest, Tls11IsRefused) {
    start_server();
    EXPECT_NE(s_client("-tls1_1 -cipher DEFAULT@SECLEVEL=0"), 0);
    EXPECT_EQ(s_client("-tls1_2"), 0);
}

TEST_F(ApiServerTest, CbcSuiteIsRefusedWithTls12) {
    start_server();
    EXPECT_NE(s_client("-tls1_2 -cipher ECDHE-ECDSA-AES128-SHA256"), 0);
    EXPECT_NE(s_client("-tls1_2 -cipher ECDHE-ECDSA-CHACHA20-POLY1305"), 0);
    EXPECT_EQ(s_client("-tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256"), 0);
}

TEST_F(ApiServerTest, Tls13OnlyWithAesGcm) {
    start_server();
    EXPECT_NE(s_client("-tls1_3 -ciphersuites TLS_CHACHA20_POLY1305_SHA256"), 0);
    EXPECT_EQ(s_client("-tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384"), 0);
}

TEST_F(ApiServerTest, GroupOutsideTheListIsRefused) {
    start_server();
    EXPECT_NE(s_client("-tls1_3 -groups X25519"), 0);
    EXPECT_NE(s_client("-tls1_2 -groups X25519:X448"), 0);
    EXPECT_EQ(s_client("-tls1_3 -groups P-384"), 0);
}

TEST_F(ApiServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
    start_server();
    const std::string url = "https://localhost:" + std::to_string(m_port) + "/echo";
    const auto result = run_command(
        "curl -sS --max-time 15 --cacert '" + pki("ca.pem") + "' --cert '" + pki("portal.crt") +
        "' --key '" + pki("portal.key") + "' -o /dev/null -o /dev/null " +
        "-w '%{http_code} %{num_connects}\\n' '" + url + "' '" + url + "' 2>/dev/null");
    EXPECT_EQ(result.status, 0);
    EXPECT_EQ(result.output, "200 1\n200 0\n");
}

TEST_F(ApiServerTest, ParallelClientsAreAllServed) {
    start_server();
    const auto result = run_command(
        "seq 1 24 | xargs -P 8 -I{} curl -sS --max-time 15 --cacert '" + pki("ca.pem") +
        "' --cert '" + pki("portal.crt") + "' --key '" + pki("portal.key") +
        "' -o /dev/null -w '%{http_code}\\n' 'https://localhost:" + std::to_string(m_port) +
        "/echo?n={}' 2>/dev/null | sort | uniq -c");
    EXPECT_EQ(result.output, "     24 200\n");
    EXPECT_EQ(m_calls, 24);
}

// Handlers run on workers, so a handler blocked on one connection leaves the
// io threads and the other workers to serve.
TEST_F(ApiServerTest, BlockedHandlerDoesNotStopOtherClients) {
    start_server();
    auto blocked = std::async(std::launch::async, [this] { return curl("portal", "", "/block"); });
    ASSERT_TRUE(wait_for_blocked());
    EXPECT_EQ(curl("monitor", "").status, 200u);
    release_blocked();
    EXPECT_EQ(blocked.get().status, 200u);
}

// A handler stuck past answer_timeout (an HSM call that never returns) gets
// its client a 503 with Retry-After; with a single worker, the next request
// is served by the worker that took the stuck one's place.
TEST_F(ApiServerTest, HandlerPastItsDeadlineIs503AndItsWorkerIsReplaced) {
    auto limits = short_limits();
    limits.workers = 1;
    limits.answer_timeout = 1s;
    start_server(tls_config(), limits);
    const auto started = std::chrono::steady_clock::now();
    const auto late = curl("portal", "-i", "/block");
    EXPECT_EQ(late.status, 503u);
    EXPECT_GE(std::chrono::steady_clock::now() - started, 1s);
    EXPECT_NE(late.body.find("Retry-After: 5"), std::string::npos) << late.body;
    EXPECT_NE(late.body.find(R"("error":"unavailable")"), std::string::npos) << late.body;
    EXPECT_EQ(m_server->stuck(), 1u);

    EXPECT_EQ(curl("monitor", "").status, 200u);
    release_blocked();
    EXPECT_TRUE(wait_until([this] { return m_server->stuck() == 0; }, 5s));
    EXPECT_EQ(curl("portal", "").status, 200u);
    const std::lock_guard lock(m_log_mutex);
    const auto logged = std::find_if(m_access.begin(), m_access.end(),
                                     [](const auto& entry) { return entry.path == "/block"; });
    ASSERT_NE(logged, m_access.end());
    EXPECT_EQ(logged->status, 503u);
}

// With the worker and its one stand-in both stuck, a request waits in the
// queue; past its deadline it gets 503 and its handler never runs, not even
// once the stuck handlers have returned.
TEST_F(ApiServerTest, QueuedRequestPastItsDeadlineNeverRuns) {
    auto limits = short_limits();
    limits.workers = 1;
    limits.answer_timeout = 1s;
    start_server(tls_config(), limits);
    EXPECT_EQ(curl("portal", "", "/block").status, 503u);  // the worker is stuck
    EXPECT_EQ(curl("portal", "", "/block").status, 503u);  // and its stand-in
    EXPECT_EQ(m_server->stuck(), 2u);
    EXPECT_EQ(m_calls, 2);

    EXPECT_EQ(curl("monitor", "").status, 503u);
    release_blocked();
    EXPECT_TRUE(wait_until([this] { return m_server->stuck() == 0; }, 5s));
    EXPECT_EQ(curl("monitor", "").status, 200u);
    EXPECT_EQ(m_calls, 3);
}

// Health and metrics have workers of their own: with every request worker
// held, a monitor still gets its answer.
TEST_F(ApiServerTest, MonitorPathsAreServedWhileEveryWorkerIsHeld) {
    auto limits = short_limits();
    limits.workers = 1;
    limits.answer_timeout = 20s;
    limits.monitor_paths = {"/health"};
    start_server(tls_config(), limits);
    auto held = std::async(std::launch::async, [this] { return curl("portal", "", "/block"); });
    ASSERT_TRUE(wait_for_blocked());
    const auto health = curl("monitor", "", "/health?full=1");
    EXPECT_EQ(health.status, 200u);
    EXPECT_EQ(parse(health.body).at("target").as_string(), "/health?full=1");
    release_blocked();
    EXPECT_EQ(held.get().status, 200u);
}

// The HSM layer tells which thread waits in an overrun call: that request
// is answered 503 then, long before its deadline.
TEST_F(ApiServerTest, OverrunNoticeAnswersThatThreadsRequestAtOnce) {
    auto limits = short_limits();
    limits.answer_timeout = 20s;
    start_server(tls_config(), limits);
    const auto notice = m_server->overrun_notice();
    notice(std::this_thread::get_id());  // no request of the server runs here

    const auto started = std::chrono::steady_clock::now();
    auto late = std::async(std::launch::async, [this] { return curl("portal", "-i", "/block"); });
    ASSERT_TRUE(wait_for_blocked());
    const auto blocked = blocked_thread();
    notice(blocked);
    const auto answer = late.get();
    EXPECT_EQ(answer.status, 503u);
    EXPECT_NE(answer.body.find("Retry-After: 5"), std::string::npos) << answer.body;
    EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
    EXPECT_EQ(m_server->stuck(), 1u);
    release_blocked();
    EXPECT_TRUE(wait_until([this] { return m_server->stuck() == 0; }, 5s));
    EXPECT_EQ(curl("portal", "").status, 200u);
}

TEST_F(ApiServerTest, HandlerExceptionIs500AndConnectionKeepsWorking) {
    start_server();
    const std::string base = "https://localhost:" + std::to_string(m_port);
    const auto result = run_command(
        "curl -sS --max-time 15 --cacert '" + pki("ca.pem") + "' --cert '" + pki("portal.crt") +
        "' --key '" + pki("portal.key") + "' -w ' %{http_code} %{num_connects}\\n' '" + base +
        "/throw' -o /dev/stdout '" + base + "/echo' -o /dev/null 2>/dev/null");
    EXPECT_EQ(result.status, 0);
    EXPECT_EQ(result.output.substr(0, result.output.find('\n')),
              R"({"error":"internal","message":"internal error"} 500 1)");
    EXPECT_NE(result.output.find(" 200 0\n"), std::string::npos) << result.output;
}

TEST_F(ApiServerTest, BadHttpIs400ThenClose) {
    start_server();
    const auto output = raw_tls_exchange("NOT HTTP AT ALL\\r\\n\\r\\n");
    EXPECT_EQ(output.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << output;
    EXPECT_NE(output.find("\"error\":\"bad_request\""), std::string::npos);
    EXPECT_EQ(m_calls, 0);
}

// A client that streams an empty POST sends "0" chunked: that is no body,
// like Content-Length: 0, so the router asks no Content-Type of it.
TEST_F(ApiServerTest, EmptyChunkedBodyIsNoBody) {
    start_server();
    const auto empty = raw_tls_exchange(
        "POST /echo HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n"
        "Transfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n");
    EXPECT_EQ(empty.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << empty;
    EXPECT_NE(empty.find("\"has_body\":false"), std::string::npos) << empty;

    const auto full = raw_tls_exchange(
        "POST /echo HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n"
        "Transfer-Encoding: chunked\\r\\n\\r\\n2\\r\\n{}\\r\\n0\\r\\n\\r\\n");
    EXPECT_NE(full.find("\"has_body\":true"), std::string::npos) << full;
}

TEST_F(ApiServerTest, ContentLengthWithChunkedIs400) {
    start_server();
    const auto output = raw_tls_exchange(
        "POST /echo HTTP/1.1\\r\\nHost: localhost\\r\\nContent-Length: 4\\r\\n"
        "Transfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n");
    EXPECT_EQ(output.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << output;
    EXPECT_EQ(m_calls, 0);
}

// RFC 9112 section 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty
// framing; it reaches no handler, and the request behind it is not read.
TEST_F(ApiServerTest, Http10WithTransferEncodingIs400ThenClose) {
    start_server();
    const auto output = raw_tls_exchange(
        "POST /echo HTTP/1.0\\r\\nHost: localhost\\r\\nConnection: keep-alive\\r\\n"
        "Transfer-Encoding: chunked\\r\\n\\r\\n4\\r\\nbody\\r\\n0\\r\\n\\r\\n"
        "GET /echo HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n");
    EXPECT_EQ(output.rfind("HTTP/1.0 400 Bad Request\r\n", 0), 0u) << output;
    EXPECT_NE(output.find("\"error\":\"bad_request\""), std::string::npos) << output;
    // Neither the refused request nor the one behind it reached the handler.
    EXPECT_EQ(m_calls, 0);
}

TEST_F(ApiServerTest, HeadersTheServerDoesNotServeAreRefusedBeforeTheHandler) {
    struct Case {
        const char* headers;
        const char* status_line;
        const char* names;
    };
    const Case cases[] = {
        {"Content-Type: application/json\\r\\nTransfer-Encoding: gzip, chunked\\r\\n\\r\\n"
         "0\\r\\n\\r\\n",
         "HTTP/1.1 501 Not Implemented\r\n", "not_implemented"},
        {"Idempotency-Key: a\\r\\nIdempotency-Key: b\\r\\nContent-Length: 0\\r\\n\\r\\n",
         "HTTP/1.1 400 Bad Request\r\n", "Idempotency-Key"},
        {"Content-Type: application/json\\r\\nContent-Type: text/plain\\r\\n"
         "Content-Length: 2\\r\\n\\r\\n{}",
         "HTTP/1.1 400 Bad Request\r\n", "Content-Type"},
    };
    start_server();
    for (const auto& c : cases) {
        const auto output = raw_tls_exchange(
            std::string("POST /echo HTTP/1.1\\r\\nHost: localhost\\r\\n") + c.headers);
        EXPECT_EQ(output.rfind(c.status_line, 0), 0u) << output;
        EXPECT_NE(output.find(c.names), std::string::npos) << output;
    }
    EXPECT_EQ(m_calls, 0);
}

TEST_F(ApiServerTest, HeaderOverLimitIs431) {
    start_server();
    const auto answer = curl("portal", "-H 'X-Padding: " + std::string(9 * 1024, 'p') + "'");
    ASSERT_EQ(answer.exit, 0);
    EXPECT_EQ(answer.status, 431u);
    EXPECT_EQ(m_calls, 0);
}

// RFC 9110 section 9.3.2: an answer to HEAD has the header GET would get,
// Content-Length included, and never a body, or the next answer on the
// connection would begin inside it.
TEST_F(ApiServerTest, HeadAnswersHaveTheirHeaderButNoBody) {
    start_server();
    auto rest = raw_tls_bytes(
        "HEAD /refuse HTTP/1.1\r\nHost: localhost\r\n\r\n"
        "HEAD /echo HTTP/1.1\r\nHost: localhost\r\n\r\n"
        "GET /refuse HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    const auto refused_head = next_answer(rest, true);
    const auto echo_head = next_answer(rest, true);
    const auto refused_get = next_answer(rest, false);
    EXPECT_EQ(refused_head.status_line, "HTTP/1.1 405 Method Not Allowed");
    EXPECT_EQ(field_value(refused_head.header, "Allow"), "GET");
    EXPECT_EQ(echo_head.status_line, "HTTP/1.1 200 OK") << echo_head.status_line;
    EXPECT_NE(field_value(echo_head.header, "Content-Length"), "");
    EXPECT_NE(field_value(echo_head.header, "Content-Length"), "0");
    ASSERT_EQ(refused_get.status_line, "HTTP/1.1 405 Method Not Allowed")
        << refused_get.status_line;
    EXPECT_FALSE(refused_get.body.empty());
    EXPECT_EQ(field_value(refused_head.header, "Content-Length"),
              std::to_string(refused_get.body.size()));
    EXPECT_EQ(rest, "");
    EXPECT_EQ(m_calls, 3);

    // curl reuses the connection only when no byte came past the first
    // answer's end.
    const std::string url = "https://localhost:" + std::to_string(m_port) + "/echo";
    const auto result = run_command(
        "curl -sS -I --max-time 15 --cacert '" + pki("ca.pem") + "' --cert '" + pki("portal.crt") +
        "' --key '" + pki("portal.key") + "' -o /dev/null -o /dev/null " +
        "-w '%{http_code} %{num_connects}\\n' '" + url + "' '" + url + "' 2>&1");
    EXPECT_EQ(result.output, "200 1\n200 0\n");
}

// The server's own refusals, before or instead of the handler, send no body
// to HEAD either.
TEST_F(ApiServerTest, HeadAnswersOfTheServersOwnRefusalsHaveNoBody) {
    start_server();
    struct Case {
        std::string request;
        const char* status_line;
    };
    const Case cases[] = {
        {"HEAD /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "HTTP/1.1 400 Bad Request"},
        {"HEAD /echo HTTP/1.1\r\nHost: localhost\r\nX-Padding: " + std::string(9000, 'p') +
             "\r\n\r\n",
         "HTTP/1.1 431 Request Header Fields Too Large"},
        {"HEAD /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n",
         "HTTP/1.1 501 Not Implemented"},
    };
    for (const auto& c : cases) {
        auto rest = raw_tls_bytes(c.request);
        const auto answer = next_answer(rest, true);
        EXPECT_EQ(answer.status_line, c.status_line);
        EXPECT_NE(field_value(answer.header, "Content-Length"), "0");
        EXPECT_EQ(rest, "") << c.status_line;
    }
    EXPECT_EQ(m_calls, 0);
}

TEST_F(ApiServerTest, HeadAnsweredAtItsDeadlineHasNoBody) {
    auto limits = short_limits();
    limits.answer_timeout = 1s;
    start_server(tls_config(), limits);
    auto rest = raw_tls_bytes(
        "HEAD /block HTTP/1.1\r\nHost: localhost\r\n\r\n"
        "GET /echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    release_blocked();
    const auto late = next_answer(rest, true);
    const auto next = next_answer(rest, false);
    EXPECT_EQ(late.status_line, "HTTP/1.1 503 Service Unavailable");
    EXPECT_EQ(field_value(late.header, "Retry-After"), "5");
    EXPECT_EQ(next.status_line, "HTTP/1.1 200 OK") << next.status_line;
    EXPECT_EQ(rest, "");
}

// The limit holds for the whole header section, however it is split into
// fields and however it arrives: a flat buffer parser that drops each field
// once read would otherwise see only the part still unread.
TEST_F(ApiServerTest, HeaderSectionOverLimitIs431InWhateverFields) {
    start_server();
    std::string small_fields;
    for (int i = 0; i < 2000; ++i) {
        small_fields += "A: b\r\n";
    }
    std::string empty_fields;
    for (int i = 0; i < 4000; ++i) {
        empty_fields += "E:\r\n";
    }
    for (const auto& fields : {small_fields, empty_fields}) {
        auto rest =
            raw_tls_bytes(request_with("GET /echo HTTP/1.1", "Host: localhost\r\n" + fields));
        const auto answer = next_answer(rest, false);
        EXPECT_EQ(answer.status_line, "HTTP/1.1 431 Request Header Fields Too Large");
        EXPECT_NE(answer.body.find("header_too_large"), std::string::npos) << answer.body;
        EXPECT_EQ(field_value(answer.header, "Connection"), "close");
    }
    EXPECT_EQ(m_calls, 0);
}

// The section is the request line and the fields with their line ends, up
// to and including the empty line that ends it: 8192 bytes pass, 8193 not.
TEST_F(ApiServerTest, HeaderSectionAtTheLimitPassesAndOneByteMoreIs431) {
    start_server();
    const auto sized = [](std::size_t size) {
        const std::string start = "GET /echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";
        const std::string field = "X-Padding: ";
        const std::string request =
            start + field + std::string(size - start.size() - field.size() - 4, 'p') + "\r\n\r\n";
        EXPECT_EQ(request.size(), size);
        return request;
    };
    auto at_limit = raw_tls_bytes(sized(8192));
    EXPECT_EQ(next_answer(at_limit, false).status_line, "HTTP/1.1 200 OK");
    auto over = raw_tls_bytes(sized(8193));
    EXPECT_EQ(next_answer(over, false).status_line, "HTTP/1.1 431 Request Header Fields Too Large");
    EXPECT_EQ(m_calls, 1);
}

TEST_F(ApiServerTest, MoreThan100HeaderFieldsIs431) {
    start_server();
    std::string fields = "Host: localhost\r\nConnection: close\r\n";
    for (int i = 2; i < 100; ++i) {
        fields += "X-" + std::to_string(i) + ": 1\r\n";
    }
    auto hundred = raw_tls_bytes(request_with("GET /echo HTTP/1.1", fields));
    EXPECT_EQ(next_answer(hundred, false).status_line, "HTTP/1.1 200 OK");
    auto more = raw_tls_bytes(request_with("GET /echo HTTP/1.1", fields + "X-100: 1\r\n"));
    const auto answer = next_answer(more, false);
    EXPECT_EQ(answer.status_line, "HTTP/1.1 431 Request Header Fields Too Large");
    EXPECT_NE(answer.body.find("header_too_large"), std::string::npos) << answer.body;
    EXPECT_EQ(m_calls, 1);
}

// RFC 9112 section 3.2: an HTTP/1.1 request without Host, and any request
// with more than one, gets 400. HTTP/1.0 has no Host requirement.
TEST_F(ApiServerTest, HostMissingFromHttp11OrRepeatedIs400) {
    start_server();
    struct Case {
        const char* request;
        const char* status_line;
    };
    const Case cases[] = {
        {"GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n", "HTTP/1.1 400 Bad Request"},
        {"GET /echo HTTP/1.1\r\nHost: localhost\r\nHost: localhost\r\nConnection: close\r\n\r\n",
         "HTTP/1.1 400 Bad Request"},
        {"GET /echo HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", "HTTP/1.0 400 Bad Request"},
        {"GET /echo HTTP/1.0\r\n\r\n", "HTTP/1.0 200 OK"},
        {"GET /echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", "HTTP/1.1 200 OK"},
    };
    for (const auto& c : cases) {
        auto rest = raw_tls_bytes(c.request);
        const auto answer = next_answer(rest, false);
        EXPECT_EQ(answer.status_line, c.status_line) << c.request;
        if (answer.status_line.find(" 400 ") != std::string::npos) {
            EXPECT_NE(answer.body.find("Host"), std::string::npos) << answer.body;
        }
    }
    EXPECT_EQ(m_calls, 2);
}

// RFC 9112 section 5.2: a field line folded onto the next (obs-fold) is
// refused, not joined; so is whitespace before the first field (section 2.2).
TEST_F(ApiServerTest, FoldedFieldLineIs400) {
    start_server();
    for (const char* request :
         {"GET /echo HTTP/1.1\r\nHost: localhost\r\nX-Folded: a\r\n b\r\nConnection: close\r\n\r\n",
          "GET /echo HTTP/1.1\r\nHost: localhost\r\nX-Folded: a\r\n\tb\r\nConnection: "
          "close\r\n\r\n",
          "GET /echo HTTP/1.1\r\n Host: localhost\r\nConnection: close\r\n\r\n"}) {
        auto rest = raw_tls_bytes(request);
        const auto answer = next_answer(rest, false);
        EXPECT_EQ(answer.status_line, "HTTP/1.1 400 Bad Request") << request;
        EXPECT_NE(answer.body.find("bad_request"), std::string::npos) << answer.body;
    }
    EXPECT_EQ(m_calls, 0);
}

// RFC 9112 section 7: transfer-coding names are case-insensitive.
TEST_F(ApiServerTest, ChunkedInAnyCaseIsUnderstood) {
    start_server();
    for (const char* coding : {"Chunked", "CHUNKED", "chunked"}) {
        auto rest = raw_tls_bytes(std::string("POST /echo HTTP/1.1\r\nHost: localhost\r\n"
                                              "Connection: close\r\nContent-Type: "
                                              "application/json\r\nTransfer-Encoding: ") +
                                  coding + "\r\n\r\n2\r\n{}\r\n0\r\n\r\n");
        const auto answer = next_answer(rest, false);
        EXPECT_EQ(answer.status_line, "HTTP/1.1 200 OK") << coding;
        EXPECT_NE(answer.body.find(R"("body":"{}")"), std::string::npos) << answer.body;
    }
    EXPECT_EQ(m_calls, 3);
}

// RFC 9112 section 6.3: Content-Length values that disagree, or a
// Content-Length beside Transfer-Encoding in either order, leave the framing
// open; such a request gets 400 and its connection closes.
TEST_F(ApiServerTest, ConflictingFramingIs400ThenClose) {
    start_server();
    for (const char* framing :
         {"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", "Content-Length: 2, 3\r\n\r\n{}",
          "Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
          "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"}) {
        auto rest = raw_tls_bytes(std::string("POST /echo HTTP/1.1\r\nHost: localhost\r\n"
                                              "Content-Type: application/json\r\n") +
                                  framing + "GET /echo HTTP/1.1\r\nHost: localhost\r\n\r\n");
        const auto answer = next_answer(rest, false);
        EXPECT_EQ(answer.status_line, "HTTP/1.1 400 Bad Request") << framing;
        EXPECT_EQ(field_value(answer.header, "Connection"), "close") << framing;
        EXPECT_EQ(rest, "") << framing;
    }
    EXPECT_EQ(m_calls, 0);
}

TEST_F(ApiServerTest, AccessLogHasPathWithoutQuery) {
    start_server();
    ASSERT_EQ(curl("portal", "", "/echo?secret=1").status, 200u);
    const std::lock_guard lock(m_log_mutex);
    ASSERT_EQ(m_access.size(), 1u);
    EXPECT_EQ(m_access[0].method, "GET");
    EXPECT_EQ(m_access[0].path, "/echo");
    EXPECT_EQ(m_access[0].status, 200u);
    EXPECT_EQ(m_access[0].client_subject, kPortal);
}

TEST_F(ApiServerTest, SilentClientIsClosedAfterHandshakeTimeout) {
    auto limits = short_limits();
    limits.handshake_timeout = 1s;
    start_server(tls_config(), limits);
    const RawSocket silent(m_port);
    ASSERT_TRUE(silent.connected());
    EXPECT_TRUE(silent.closed_within(15s));
}

// A client that has passed the handshake and trickles its request one byte at
// a time loses the connection once the request timeout is over.
TEST_F(ApiServerTest, TricklingClientIsClosedAfterRequestTimeout) {
    auto limits = short_limits();
    limits.request_timeout = 1s;
    start_server(tls_config(), limits);

    const auto client = connect_portal();

    const std::string request =
        "GET /echo HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + std::string(60, 's');
    std::size_t sent = 0;
    boost::system::error_code error;
    for (; sent < request.size() && !error; ++sent) {
        net::write(client->stream(), net::buffer(&request[sent], 1), error);
        std::this_thread::sleep_for(200ms);
    }
    EXPECT_LT(sent, request.size());
    EXPECT_TRUE(error);
    EXPECT_EQ(m_calls, 0);
}

// Between requests the server waits for the next one without a buffer of its
// own; the idle timeout, not the request timeout, still ends that wait.
TEST_F(ApiServerTest, KeptConnectionIsClosedAfterIdleTimeout) {
    auto limits = short_limits();
    limits.request_timeout = 1s;
    limits.idle_timeout = 3s;
    start_server(tls_config(), limits);
    const auto client = connect_portal();
    ASSERT_EQ(client->ask(), 200u);

    EXPECT_FALSE(client->closed_within(2s));
    EXPECT_TRUE(client->closed_within(10s));
}

// The second request is already in the socket, not yet read by OpenSSL,
// when the server starts to wait for it.
TEST_F(ApiServerTest, PipelinedRequestsInSeparateRecordsAreBothAnswered) {
    start_server();
    const auto client = connect_portal();
    client->send();
    client->send();

    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(client->read_answer(), 200u);
    EXPECT_EQ(client->read_answer(), 200u);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST_F(ApiServerTest, AtTheMaximumTheOldestSilentConnectionMakesRoom) {
    auto limits = short_limits();
    limits.max_connections = 3;
    limits.handshake_timeout = 30s;
    start_server(tls_config(), limits);
    std::vector<std::unique_ptr<RawSocket>> held;
    for (int i = 0; i < 3; ++i) {
        held.push_back(std::make_unique<RawSocket>(m_port));
        // Accepted one after the other, so that "oldest" is the first.
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_EQ(m_server->evicted(), 0u);
    const RawSocket extra(m_port);
    EXPECT_TRUE(held[0]->closed_within(10s));
    EXPECT_EQ(m_server->evicted(), 1u);
    EXPECT_FALSE(held[1]->closed_within(0ms));
    EXPECT_FALSE(held[2]->closed_within(0ms));
    EXPECT_FALSE(extra.closed_within(500ms));

    // A portal that completes its handshake gets in past silent connections.
    EXPECT_EQ(curl("portal", "").status, 200u);
    EXPECT_TRUE(held[1]->closed_within(10s));
    EXPECT_EQ(m_server->evicted(), 2u);
}

TEST_F(ApiServerTest, AtTheMaximumWithEveryClientInANewConnectionIsClosed) {
    auto limits = short_limits();
    limits.max_connections = 2;
    limits.idle_timeout = 20s;
    start_server(tls_config(), limits);
    // Two portal connections past their handshake, kept open (-ign_eof).
    std::vector<std::unique_ptr<otpbox::test::ChildProcess>> clients;
    for (int i = 0; i < 2; ++i) {
        clients.push_back(std::make_unique<otpbox::test::ChildProcess>(std::vector<std::string>{
            "timeout", "15", "openssl", "s_client", "-connect",
            "127.0.0.1:" + std::to_string(m_port), "-CAfile", pki("ca.pem"), "-cert",
            pki("portal.crt"), "-key", pki("portal.key"), "-ign_eof", "-quiet"}));
        std::this_thread::sleep_for(1s);
    }
    const RawSocket extra(m_port);
    EXPECT_TRUE(extra.closed_within(10s));
    EXPECT_EQ(m_server->evicted(), 0u);
    for (const auto& client : clients) {
        EXPECT_TRUE(client->running()) << "a client past its handshake is never closed for room";
    }
    for (auto& client : clients) {
        (void)client->stop();
    }
}

TEST_F(ApiServerTest, HalfOpenFloodDoesNotStarveValidClient) {
    auto limits = short_limits();
    limits.handshake_timeout = 30s;
    limits.max_connections = 100;  // the flood fills every slot, twice over
    start_server(tls_config(), limits);
    std::vector<std::unique_ptr<RawSocket>> flood;
    for (int i = 0; i < 200; ++i) {
        flood.push_back(std::make_unique<RawSocket>(m_port));
        ASSERT_TRUE(flood.back()->connected());
    }
    EXPECT_EQ(curl("portal", "").status, 200u);
}

TEST_F(ApiServerTest, StopClosesConnectionsAndListener) {
    auto limits = short_limits();
    limits.handshake_timeout = 30s;
    start_server(tls_config(), limits);
    const RawSocket open(m_port);
    ASSERT_TRUE(open.connected());
    ASSERT_EQ(curl("portal", "").status, 200u);

    m_server->stop();
    EXPECT_TRUE(open.closed_within(10s));
    EXPECT_FALSE(RawSocket(m_port).connected());
}

TEST_F(ApiServerTest, ExternalKeyIsUsedInsteadOfKeyFile) {
    FILE* file = std::fopen(pki("server.key").c_str(), "r");
    ASSERT_NE(file, nullptr);
    std::shared_ptr<EVP_PKEY> key(PEM_read_PrivateKey(file, nullptr, nullptr, nullptr),
                                  EVP_PKEY_free);
    std::fclose(file);
    ASSERT_TRUE(key);
    auto tls = tls_config();
    tls.key_file = "/nonexistent/server.key";
    tls.key = key;
    start_server(tls);
    EXPECT_EQ(curl("portal", "").status, 200u);
}

TEST_F(ApiServerTest, MissingCertificateFileIsNamed) {
    auto tls = tls_config();
    tls.certificate_file = "/nonexistent/server.crt";
    try {
        Server server(m_io, "127.0.0.1", 0, tls, short_limits(),
                      [](const Request&) { return Response{}; });
        FAIL() << "no exception";
    } catch (const std::runtime_error& error) {
        EXPECT_NE(std::string(error.what()).find("/nonexistent/server.crt"), std::string::npos);
    }
}

TEST_F(ApiServerTest, KeyNotMatchingCertificateIsRefused) {
    auto tls = tls_config();
    tls.key_file = pki("portal.key");
    EXPECT_THROW(Server(m_io, "127.0.0.1", 0, tls, short_limits(),
                        [](const Request&) { return Response{}; }),
                 std::runtime_error);
}

TEST_F(ApiServerTest, PortInUseThrowsSystemError) {
    start_server();
    Server second(m_io, "127.0.0.1", m_port, tls_config(), short_limits(),
                  [](const Request&) { return Response{}; });
    try {
        second.start();
        FAIL() << "no exception";
    } catch (const std::system_error& error) {
        EXPECT_EQ(error.code(), std::errc::address_in_use);
    }
    EXPECT_EQ(curl("portal", "").status, 200u);
}

TEST_F(ApiServerTest, BadListenAddressThrowsSystemError) {
    Server server(m_io, "not-an-address", 0, tls_config(), short_limits(),
                  [](const Request&) { return Response{}; });
    EXPECT_THROW(server.start(), std::system_error);
}

TEST_F(ApiServerTest, ListensOnIpv6Loopback) {
    m_server = std::make_unique<Server>(m_io, "::1", 0, tls_config(), short_limits(),
                                        [this](const Request& request) { return echo(request); });
    m_server->start();
    m_port = m_server->port();
    m_threads.emplace_back([this] { m_io.run(); });
    const auto result =
        run_command("curl -sS --max-time 15 -g --cacert '" + pki("ca.pem") + "' --cert '" +
                    pki("portal.crt") + "' --key '" + pki("portal.key") +
                    "' -o /dev/null -w '%{http_code}' 'https://[::1]:" + std::to_string(m_port) +
                    "/echo' 2>/dev/null");
    EXPECT_EQ(result.output, "200");
}

// reload() changes what new connections get; one already open keeps the
// settings it was accepted with.
TEST_F(ApiServerTest, ReloadAppliesTheAllowListToNewConnections) {
    auto tls = tls_config();
    tls.clients = {{kPortal, Role::portal}};
    start_server(tls);
    EXPECT_NE(curl("monitor", "").exit, 0);

    tls.clients.push_back({kMonitor, Role::monitor});
    m_server->reload(tls);
    const auto answer = curl("monitor", "");
    ASSERT_EQ(answer.status, 200u);
    EXPECT_EQ(parse(answer.body).at("role"), "monitor");

    tls.clients.pop_back();
    m_server->reload(tls);
    EXPECT_NE(curl("monitor", "").exit, 0);
    EXPECT_EQ(curl("portal", "").status, 200u);
}

TEST_F(ApiServerTest, ReloadThatFailsThrowsAndKeepsTheRunningSettings) {
    start_server();
    auto missing = tls_config();
    missing.certificate_file = "/nonexistent/server.crt";
    missing.clients = {};
    EXPECT_THROW(m_server->reload(missing), std::runtime_error);

    auto mismatch = tls_config();
    mismatch.key_file = pki("portal.key");
    mismatch.clients = {};
    try {
        m_server->reload(mismatch);
        FAIL() << "a key for another certificate was taken";
    } catch (const std::runtime_error& error) {
        EXPECT_NE(std::string(error.what()).find("does not match the certificate"),
                  std::string::npos)
            << error.what();
    }
    EXPECT_EQ(curl("portal", "").status, 200u);
    EXPECT_EQ(curl("monitor", "").status, 200u);
}

TEST_F(ApiServerTest, ReloadLeavesAnOpenConnectionItsSettings) {
    start_server();
    const auto client = connect_portal();
    ASSERT_EQ(client->ask(), 200u);

    auto tls = tls_config();
    tls.clients = {{kMonitor, Role::monitor}};
    m_server->reload(tls);
    EXPECT_NE(curl("portal", "").exit, 0);
    EXPECT_EQ(client->ask(), 200u);
    EXPECT_EQ(curl("monitor", "").status, 200u);
}

}  // namespace
