#include "api/tls_stream.hpp"

#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/err.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>

#include <cerrno>
#include <stdexcept>

namespace otpbox::api {

namespace net = boost::asio;
using net::ip::tcp;

namespace {

// OpenSSL's own socket BIO writes with write(), which raises SIGPIPE on a
// connection the peer has reset; this one sends with MSG_NOSIGNAL. Both
// directions never block: a wait goes back to the stream as a retry. The
// BIO reads the descriptor from the socket at each call, so a closed
// socket gives EBADF instead of another connection's data.
int socket_of(BIO* bio) {
    return static_cast<tcp::socket*>(BIO_get_data(bio))->native_handle();
}

int bio_read(BIO* bio, char* data, int size) {
    BIO_clear_retry_flags(bio);
    const auto got = ::recv(socket_of(bio), data, static_cast<std::size_t>(size), MSG_DONTWAIT);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        BIO_set_retry_read(bio);
    }
    return static_cast<int>(got);
}

int bio_write(BIO* bio, const char* data, int size) {
    BIO_clear_retry_flags(bio);
    const auto sent =
        ::send(socket_of(bio), data, static_cast<std::size_t>(size), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        BIO_set_retry_write(bio);
    }
    return static_cast<int>(sent);
}

long bio_control(BIO* /*bio*/, int command, long /*number*/, void* /*pointer*/) {
    return command == BIO_CTRL_FLUSH ? 1 : 0;  // nothing is held back to flush
}

int bio_create(BIO* bio) {
    BIO_set_init(bio, 1);
    return 1;
}

const BIO_METHOD* socket_method() {
    static BIO_METHOD* const method = [] {
        BIO_METHOD* made =
            BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "otpbox socket");
        if (made == nullptr || BIO_meth_set_read(made, bio_read) != 1 ||
            BIO_meth_set_write(made, bio_write) != 1 || BIO_meth_set_ctrl(made, bio_control) != 1 ||
            BIO_meth_set_create(made, bio_create) != 1) {
            throw std::runtime_error("TLS: no socket BIO method");
        }
        return made;
    }();
    return method;
}

}  // namespace

TlsStream::TlsStream(tcp::socket socket, SSL_CTX* context)
    : m_core(std::make_shared<Core>(std::move(socket))) {
    m_core->ssl.reset(SSL_new(context));
    BIO* bio = BIO_new(socket_method());
    if (!m_core->ssl || bio == nullptr) {
        BIO_free(bio);
        ERR_clear_error();
        throw std::runtime_error("TLS: no SSL object for a connection");
    }
    BIO_set_data(bio, &m_core->socket);
    SSL_set_bio(m_core->ssl.get(), bio, bio);  // takes the one reference
    SSL_set_mode(m_core->ssl.get(), SSL_MODE_ENABLE_PARTIAL_WRITE |
                                        SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                        SSL_MODE_RELEASE_BUFFERS);
    SSL_set_accept_state(m_core->ssl.get());
}

// May run on another thread than the strand: no operation is pending then,
// and a deadline's handler still queued finds no wait and leaves the socket.
TlsStream::~TlsStream() {
    error_code ignored;
    m_core->timer.cancel();
    m_core->socket.close(ignored);
}

void TlsStream::expires_after(std::chrono::steady_clock::duration timeout) {
    m_core->deadline = std::chrono::steady_clock::now() + timeout;
}

void TlsStream::close() {
    error_code ignored;
    m_core->socket.close(ignored);
}

// One OpenSSL call, on a socket still open, with the thread's error queue
// and errno cleared first so that only this call's errors are read after it.
template <typename Call>
TlsStream::Progress TlsStream::attempt(Call call) {
    if (!m_core->socket.is_open()) {
        return {Want::nothing, net::error::bad_descriptor, 0};
    }
    ERR_clear_error();
    errno = 0;
    std::size_t bytes = 0;
    const int result = call(m_core->ssl.get(), bytes);
    return outcome(result, bytes);
}

TlsStream::Progress TlsStream::handshake_step() {
    return attempt([](SSL* ssl, std::size_t& /*bytes*/) { return SSL_do_handshake(ssl); });
}

TlsStream::Progress TlsStream::data_step(bool waited) {
    if (!m_core->socket.is_open()) {
        return {Want::nothing, net::error::bad_descriptor, 0};
    }
    if (waited || SSL_has_pending(m_core->ssl.get()) == 1) {
        return {};
    }
    return {Want::read, {}, 0};
}

TlsStream::Progress TlsStream::read_step(net::mutable_buffer buffer) {
    if (buffer.size() == 0) {
        return {};
    }
    return attempt([buffer](SSL* ssl, std::size_t& bytes) {
        return SSL_read_ex(ssl, buffer.data(), buffer.size(), &bytes);
    });
}

TlsStream::Progress TlsStream::write_step(net::const_buffer buffer) {
    if (buffer.size() == 0) {
        return {};
    }
    return attempt([buffer](SSL* ssl, std::size_t& bytes) {
        return SSL_write_ex(ssl, buffer.data(), buffer.size(), &bytes);
    });
}

// SSL_shutdown answers 0 once our close_notify is out and the peer's has
// not come yet; the next call reads for it.
TlsStream::Progress TlsStream::shutdown_step() {
    return attempt([](SSL* ssl, std::size_t& /*bytes*/) {
        const int result = SSL_shutdown(ssl);
        if (result != 0) {
            return result;
        }
        ERR_clear_error();
        errno = 0;
        return SSL_shutdown(ssl);
    });
}

TlsStream::Progress TlsStream::raw_read_step(net::mutable_buffer buffer) {
    if (!m_core->socket.is_open()) {
        return {Want::nothing, net::error::bad_descriptor, 0};
    }
    const auto got =
        ::recv(m_core->socket.native_handle(), buffer.data(), buffer.size(), MSG_DONTWAIT);
    if (got > 0) {
        return {Want::nothing, {}, static_cast<std::size_t>(got)};
    }
    if (got == 0) {
        return {Want::nothing, net::error::eof, 0};
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        return {Want::read, {}, 0};
    }
    return {Want::nothing, error_code(errno, boost::system::system_category()), 0};
}

void TlsStream::shutdown_send() {
    error_code ignored;
    m_core->socket.shutdown(tcp::socket::shutdown_send, ignored);
}

// The errors are those of Asio's ssl::stream, which Beast's HTTP reads
// understand: the peer's close_notify is end of file, a close without it a
// truncated stream.
TlsStream::Progress TlsStream::outcome(int result, std::size_t bytes) {
    if (result == 1) {
        return {Want::nothing, {}, bytes};
    }
    const int system_error = errno;
    const int ssl_error = SSL_get_error(m_core->ssl.get(), result);
    if (ssl_error == SSL_ERROR_WANT_READ) {
        return {Want::read, {}, 0};
    }
    if (ssl_error == SSL_ERROR_WANT_WRITE) {
        return {Want::write, {}, 0};
    }
    if (ssl_error == SSL_ERROR_ZERO_RETURN) {
        return {Want::nothing, net::error::eof, 0};
    }
    const unsigned long code = ERR_get_error();
    ERR_clear_error();
    if (ssl_error == SSL_ERROR_SYSCALL && code == 0 && system_error != 0) {
        return {Want::nothing, error_code(system_error, boost::system::system_category()), 0};
    }
    if (code == 0 || ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        return {Want::nothing, net::ssl::error::stream_truncated, 0};
    }
    return {Want::nothing, error_code(static_cast<int>(code), net::error::get_ssl_category()), 0};
}

// The deadline's handler shares the core, so it can run after the stream
// is gone; it acts only on the wait it was set for. Like beast::tcp_stream,
// it closes the socket, and the wait then reports the timeout.
void TlsStream::arm_deadline() {
    m_core->waiting = true;
    ++m_core->waits;
    if (m_core->deadline == std::chrono::steady_clock::time_point::max()) {
        return;
    }
    m_core->timer.expires_at(m_core->deadline);
    m_core->timer.async_wait([core = m_core, wait = m_core->waits](error_code error) {
        if (error || !core->waiting || core->waits != wait) {
            return;
        }
        core->timed_out = true;
        error_code ignored;
        core->socket.close(ignored);
    });
}

TlsStream::error_code TlsStream::end_wait(error_code error) {
    m_core->waiting = false;
    m_core->timer.cancel();
    if (m_core->timed_out) {
        return boost::beast::error::timeout;
    }
    return error;
}

}  // namespace otpbox::api
