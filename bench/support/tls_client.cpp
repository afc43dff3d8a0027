#include "tls_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <thread>

namespace otpbox::bench {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;

X509Ptr read_certificate(const fs::path& path) {
    FILE* file = std::fopen(path.c_str(), "r");
    if (file == nullptr) {
        throw std::runtime_error("cannot read " + path.string());
    }
    X509Ptr certificate(PEM_read_X509(file, nullptr, nullptr, nullptr), &X509_free);
    std::fclose(file);
    if (!certificate) {
        throw tls_failure("reading " + path.string());
    }
    return certificate;
}

int status_of(std::string_view answer) {
    constexpr std::string_view kVersion = "HTTP/1.1 ";
    if (answer.substr(0, kVersion.size()) != kVersion) {
        throw std::runtime_error("not an HTTP/1.1 answer");
    }
    return std::atoi(std::string(answer.substr(kVersion.size(), 3)).c_str());
}

}  // namespace

std::runtime_error tls_failure(const std::string& what) {
    std::string reason;
    if (const unsigned long code = ERR_get_error(); code != 0) {
        char text[256];
        ERR_error_string_n(code, text, sizeof(text));
        reason = std::string(": ") + text;
    }
    ERR_clear_error();
    return std::runtime_error(what + reason);
}

int connect_loopback(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        throw std::runtime_error("no socket (out of descriptors?)");
    }
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

SslCtxPtr client_context(const fs::path& pki, const std::string& role, bool resume) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()), &SSL_CTX_free);
    SSL_CTX* c = ctx.get();
    if (c == nullptr || SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_ciphersuites(c, kSuite) != 1 || SSL_CTX_set1_groups_list(c, kGroup) != 1 ||
        SSL_CTX_load_verify_locations(c, (pki / "ca.pem").c_str(), nullptr) != 1 ||
        SSL_CTX_use_certificate_chain_file(c, (pki / (role + ".crt")).c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(c, (pki / (role + ".key")).c_str(), SSL_FILETYPE_PEM) != 1) {
        throw tls_failure("client TLS context");
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    if (!resume) {
        SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
    }
    return ctx;
}

TlsConnection::TlsConnection(SSL_CTX* ctx, std::uint16_t port, const SessionPtr& session)
    : m_fd(connect_loopback(port)), m_ssl(SSL_new(ctx)) {
    if (m_ssl == nullptr || SSL_set_fd(m_ssl, m_fd) != 1 ||
        (session && SSL_set_session(m_ssl, session.get()) != 1) || SSL_connect(m_ssl) != 1) {
        cleanup();
        throw tls_failure("TLS handshake with port " + std::to_string(port));
    }
}

SessionPtr TlsConnection::session() const {
    SSL_SESSION* kept = SSL_get1_session(m_ssl);
    if (kept != nullptr && SSL_SESSION_is_resumable(kept) != 1) {
        SSL_SESSION_free(kept);
        kept = nullptr;
    }
    return kept == nullptr ? nullptr : SessionPtr(kept, SSL_SESSION_free);
}

TlsConnection::~TlsConnection() {
    SSL_shutdown(m_ssl);
    cleanup();
}

// A shutdown after the server has closed leaves errors in this thread's
// queue; they belong to no later call.
void TlsConnection::cleanup() {
    SSL_free(m_ssl);
    ::close(m_fd);
    ERR_clear_error();
}

void TlsConnection::write(std::string_view data) {
    if (SSL_write(m_ssl, data.data(), static_cast<int>(data.size())) <= 0) {
        throw tls_failure("TLS write");
    }
}

std::string TlsConnection::read_until(const std::function<std::size_t(std::string_view)>& done) {
    for (;;) {
        if (const std::size_t length = done(m_buffer); length != 0) {
            std::string answer = m_buffer.substr(0, length);
            m_buffer.erase(0, length);
            return answer;
        }
        char chunk[4096];
        const int got = SSL_read(m_ssl, chunk, sizeof(chunk));
        if (got <= 0) {
            throw tls_failure("TLS read (the server closed the connection)");
        }
        m_buffer.append(chunk, static_cast<std::size_t>(got));
    }
}

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

HttpAnswer http_request(TlsConnection& connection, std::string_view method, std::string_view target,
                        std::string_view body) {
    std::string request;
    request.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: localhost\r\n");
    if (!body.empty()) {
        request += "Content-Type: application/json\r\n";
    }
    request.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n\r\n");
    request.append(body);
    connection.write(request);

    const auto answer = connection.read_until(http_answer_length);
    const auto header_end = answer.find("\r\n\r\n");
    return {status_of(answer), answer.substr(header_end + 4)};
}

void wait_for_certificate(SSL_CTX* ctx, std::uint16_t port, const std::string& name,
                          const fs::path& expected,
                          const std::function<void(TlsConnection&)>& request) {
    const auto wanted = read_certificate(expected);
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
        try {
            TlsConnection connection(ctx, port);
            request(connection);
            if (X509_cmp(connection.peer_certificate(), wanted.get()) == 0) {
                return;
            }
        } catch (const std::exception&) {
            ERR_clear_error();  // not serving yet
        }
        std::this_thread::sleep_for(200ms);
    }
    throw std::runtime_error(name + " did not serve " + expected.string());
}

}  // namespace otpbox::bench
