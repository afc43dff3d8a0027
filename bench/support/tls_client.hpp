#pragma once

// The portal's side of a TLS connection to a server under test on
// 127.0.0.1, with plain OpenSSL and blocking sockets: one connection per
// client thread, so that a client's cost stays small beside the server's.

#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace otpbox::bench {

using SslCtxPtr = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;

inline constexpr const char* kSuite = "TLS_AES_256_GCM_SHA384";
inline constexpr const char* kGroup = "P-256";

// An error naming what failed, with OpenSSL's first queued reason; clears
// the thread's queue.
std::runtime_error tls_failure(const std::string& what);

// A TCP connection to 127.0.0.1:port with Nagle off; throws when refused.
int connect_loopback(std::uint16_t port);

// TLS 1.3 only, kSuite over kGroup, pki's ca.pem as the only trust anchor,
// pki's certificate of that role ("portal" or "monitor"). Without `resume`
// the client takes no session tickets, so every connection is a full
// handshake; with it, sessions can be kept and offered again.
SslCtxPtr client_context(const std::filesystem::path& pki, const std::string& role = "portal",
                         bool resume = false);

using SessionPtr = std::shared_ptr<SSL_SESSION>;

// One client connection, handshake done on construction.
class TlsConnection {
  public:
    // Offers `session` for resumption when there is one.
    TlsConnection(SSL_CTX* ctx, std::uint16_t port, const SessionPtr& session = nullptr);
    ~TlsConnection();
    TlsConnection(const TlsConnection&) = delete;
    TlsConnection& operator=(const TlsConnection&) = delete;

    void write(std::string_view data);

    // Reads until `done` finds a whole answer in what has arrived (its
    // length, 0 while incomplete); returns it.
    std::string read_until(const std::function<std::size_t(std::string_view)>& done);

    [[nodiscard]] X509* peer_certificate() const { return SSL_get0_peer_certificate(m_ssl); }
    [[nodiscard]] bool resumed() const { return SSL_session_reused(m_ssl) == 1; }
    // The session to offer later, once a ticket has come (in TLS 1.3 after
    // the handshake: take it after an answer was read); null without one.
    [[nodiscard]] SessionPtr session() const;

  private:
    void cleanup();

    int m_fd;
    SSL* m_ssl;
    std::string m_buffer;
};

// The length of a whole HTTP/1.1 answer at the start of data, 0 if
// incomplete; throws for an answer without Content-Length.
std::size_t http_answer_length(std::string_view data);

struct HttpAnswer {
    int status = 0;
    std::string body;
};

// One request on a kept-alive connection and its answer. A body goes as
// application/json; an empty one sends Content-Length: 0.
HttpAnswer http_request(TlsConnection& connection, std::string_view method, std::string_view target,
                        std::string_view body = {});

// Waits up to 30 s until the server on port completes `request` on a new
// connection and presents the certificate in the PEM file `expected`: it has
// started, and with the key it is meant to have. Throws naming `name`.
void wait_for_certificate(SSL_CTX* ctx, std::uint16_t port, const std::string& name,
                          const std::filesystem::path& expected,
                          const std::function<void(TlsConnection&)>& request);

}  // namespace otpbox::bench
