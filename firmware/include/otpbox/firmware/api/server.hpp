#pragma once

// The portal's front door: HTTP/1.1 over mutual TLS on Boost.Beast. The TLS
// layer decides who gets in (CA, subject allow-list, role); the handler
// decides what each request gets.

#include <boost/asio/io_context.hpp>
#include <boost/beast/http/verb.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using EVP_PKEY = struct evp_pkey_st;

namespace otpbox::api {

enum class Role { portal, monitor };

struct AllowedClient {
    std::string subject;  // RFC 2253 form, "CN=otpbox-portal,O=otpbox development"
    Role role = Role::portal;
};

struct TlsConfig {
    std::filesystem::path ca_file;           // CA of the clients' certificates
    std::filesystem::path certificate_file;  // server certificate chain, PEM
    std::filesystem::path key_file;          // server key, PEM; unused when key is set
    // A key whose operations happen elsewhere (in the HSM); takes precedence.
    std::shared_ptr<EVP_PKEY> key;
    std::optional<std::filesystem::path> crl_file;
    std::vector<AllowedClient> clients;
    // How long a session ticket lets a client resume without a full
    // handshake; its sealing key lives at most twice as long. Zero: no
    // tickets, every connection makes a full handshake.
    std::chrono::seconds ticket_lifetime{3600};
};

struct ServerLimits {
    std::size_t max_body = 16 * 1024;  // larger bodies get 413
    // The request line and header fields with their line ends, up to and
    // including the empty line after them; larger sections get 431.
    std::size_t max_header = 8 * 1024;
    std::size_t max_header_fields = 100;  // more get 431
    std::chrono::seconds handshake_timeout{10};
    std::chrono::seconds request_timeout{30};  // to read one whole request
    std::chrono::seconds idle_timeout{60};     // between requests on a kept-alive connection
    std::size_t max_connections = 2000;
    // Handlers run on this many worker threads. One that has not answered
    // within answer_timeout gets 503 with Retry-After; its worker is left to
    // finish and another takes its place.
    std::size_t workers = 8;
    std::chrono::milliseconds answer_timeout{11000};
    // Requests for these paths (health, metrics) run on workers of their
    // own, so that handlers stuck elsewhere never keep a monitor waiting.
    std::vector<std::string> monitor_paths;
    std::size_t monitor_workers = 2;
};

struct Request {
    boost::beast::http::verb method = boost::beast::http::verb::unknown;
    std::string method_name;  // as sent, for 405 messages
    std::string target;       // path and query, as sent
    std::string content_type;
    std::optional<std::string> idempotency_key;  // nullopt when the header is absent
    std::string body;
    bool has_body = false;
    std::string client_subject;  // RFC 2253 form of the client certificate's subject
    Role role = Role::portal;
};

struct Response {
    unsigned status = 200;
    std::string body;  // JSON unless a content type header says otherwise
    std::vector<std::pair<std::string, std::string>> headers;
};

// Runs on a worker thread of the server; may block (HSM, SQLite), and may
// still be running after its client was answered 503 at the deadline.
using Handler = std::function<Response(const Request&)>;

// One answered request, for an access log. Never holds a body or a query.
struct AccessEntry {
    std::string method;  // "" when the request could not be parsed
    std::string path;    // without the query
    unsigned status = 0;
    std::string client_subject;
    std::chrono::microseconds duration{0};
};
using AccessLog = std::function<void(const AccessEntry&)>;

class Server {
  public:
    // Loads the certificates and key; throws std::runtime_error naming the
    // file or the problem.
    Server(boost::asio::io_context& io, std::string address, std::uint16_t port,
           const TlsConfig& tls, ServerLimits limits, Handler handler);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Called after every answer, on the connection's thread; set it before
    // start(). Exceptions it throws are swallowed.
    void set_access_log(AccessLog log);

    // Binds and starts accepting; throws std::system_error when it cannot bind.
    void start();
    // Stops accepting, closes every connection, and waits up to
    // answer_timeout for handlers still running. A handler abandoned at its
    // deadline is not waited for: see stuck().
    void stop();

    // Loads new certificates, key, CA, CRL and allow-list for the
    // connections accepted from now on; a connection already open keeps the
    // ones it began with. Throws std::runtime_error like the constructor,
    // and then the settings in use stay. Safe to call from any thread.
    void reload(const TlsConfig& tls);

    [[nodiscard]] std::uint16_t port() const;
    // Connections closed in their handshake to make room at max_connections,
    // since the start.
    [[nodiscard]] std::uint64_t evicted() const;
    // Handshakes since the start: those that let a client in, in full and
    // resumed from a session ticket, and those refused with a TLS alert (no
    // client certificate, an unknown CA, an unlisted subject, a protocol or
    // suite outside the list), with OpenSSL's reason for the last refusal.
    struct Handshakes {
        std::uint64_t full = 0;
        std::uint64_t resumed = 0;
        std::uint64_t refused = 0;
        std::string last_refusal;
    };
    [[nodiscard]] Handshakes handshakes() const;
    // Handlers abandoned at their deadline that have not returned yet. While
    // there are any, whatever they use must stay alive.
    [[nodiscard]] std::size_t stuck() const;

    // For Hsm::set_overrun_listener: the request whose handler runs on that
    // thread gets its 503 now rather than at its deadline. It keeps no part
    // of the server alive and does nothing once the server is gone.
    [[nodiscard]] std::function<void(std::thread::id)> overrun_notice() const;

  private:
    class Impl;
    std::shared_ptr<Impl> m_impl;
};

}  // namespace otpbox::api
