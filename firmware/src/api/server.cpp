#include "otpbox/firmware/api/server.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>

#include "api/connection.hpp"
#include "api/server_state.hpp"

namespace otpbox::api {

namespace net = boost::asio;
using net::ip::tcp;

namespace {

// After a failed accept (out of descriptors, say) the next try waits a
// little, so the loop does not spin while the condition lasts.
constexpr std::chrono::milliseconds kAcceptRetry{100};

}  // namespace

class Server::Impl : public std::enable_shared_from_this<Server::Impl> {
  public:
    Impl(net::io_context& io, std::string address, std::uint16_t port,
         std::shared_ptr<ServerState> state)
        : m_io(io),
          m_address(std::move(address)),
          m_requested_port(port),
          m_state(std::move(state)),
          m_acceptor(io),
          m_retry(io) {}

    void start();
    void stop();
    [[nodiscard]] std::uint16_t port() const { return m_port; }
    [[nodiscard]] ServerState& state() { return *m_state; }
    [[nodiscard]] std::weak_ptr<ServerState> state_pointer() const { return m_state; }

  private:
    void accept();
    void on_accept(boost::system::error_code error, tcp::socket socket);
    void open_connection(tcp::socket socket);

    net::io_context& m_io;
    std::string m_address;
    std::uint16_t m_requested_port;
    std::shared_ptr<ServerState> m_state;
    // Guards the acceptor and the retry timer: stop() may come from any thread
    // while an accept completes on another.
    std::mutex m_mutex;
    tcp::acceptor m_acceptor;
    net::steady_timer m_retry;
    std::atomic<std::uint16_t> m_port{0};
};

void Server::Impl::start() {
    boost::system::error_code error;
    const auto address = net::ip::make_address(m_address, error);
    if (error) {
        throw std::system_error(error, "listen address \"" + m_address + "\"");
    }
    const tcp::endpoint endpoint(address, m_requested_port);
    const auto where = m_address + " port " + std::to_string(m_requested_port);
    {
        const std::lock_guard lock(m_mutex);
        const auto step = [&](const char* what, auto&& call) {
            call();
            if (error) {
                boost::system::error_code ignored;
                m_acceptor.close(ignored);
                throw std::system_error(error, std::string(what) + " " + where);
            }
        };
        step("open", [&] { m_acceptor.open(endpoint.protocol(), error); });
        step("reuse", [&] { m_acceptor.set_option(net::socket_base::reuse_address(true), error); });
        step("bind", [&] { m_acceptor.bind(endpoint, error); });
        step("listen", [&] { m_acceptor.listen(net::socket_base::max_listen_connections, error); });
        m_port = m_acceptor.local_endpoint(error).port();
    }
    accept();
}

void Server::Impl::accept() {
    const std::lock_guard lock(m_mutex);
    if (!m_acceptor.is_open()) {
        return;
    }
    // Each connection gets its own strand, so its handlers never run
    // concurrently while the io_context runs on several threads.
    m_acceptor.async_accept(net::make_strand(m_io),
                            [self = shared_from_this()](auto error, tcp::socket socket) {
                                self->on_accept(error, std::move(socket));
                            });
}

void Server::Impl::on_accept(boost::system::error_code error, tcp::socket socket) {
    if (error == net::error::operation_aborted || m_state->stopped()) {
        return;
    }
    if (error) {
        const std::lock_guard lock(m_mutex);
        m_retry.expires_after(kAcceptRetry);
        m_retry.async_wait([self = shared_from_this()](auto wait_error) {
            if (!wait_error) {
                self->accept();
            }
        });
        return;
    }
    open_connection(std::move(socket));
    accept();
}

// Beyond max_connections a new connection is closed at once, before any TLS
// work is spent on it.
void Server::Impl::open_connection(tcp::socket socket) {
    // Every write is a whole TLS flight or a whole answer, so Nagle's
    // algorithm only delays: an answer written while the session ticket sent
    // after the handshake is not yet acknowledged would wait for the
    // client's delayed ACK (about 40 ms).
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto connection = std::make_shared<Connection>(std::move(socket), m_state);
    if (m_state->admit(connection, connection->id())) {
        connection->start();
    }
}

void Server::Impl::stop() {
    {
        const std::lock_guard lock(m_mutex);
        boost::system::error_code ignored;
        m_acceptor.close(ignored);
        m_retry.cancel();
    }
    for (const auto& connection : m_state->stop()) {
        connection->close();
    }
    m_state->stop_workers(m_state->limits().answer_timeout);
}

Server::Server(net::io_context& io, std::string address, std::uint16_t port, const TlsConfig& tls,
               ServerLimits limits, Handler handler)
    : m_impl(std::make_shared<Impl>(
          io, std::move(address), port,
          std::make_shared<ServerState>(make_tls_settings(tls), limits, std::move(handler)))) {}

Server::~Server() {
    m_impl->stop();
}

void Server::set_access_log(AccessLog log) {
    m_impl->state().set_access_log(std::move(log));
}

void Server::start() {
    m_impl->start();
}

void Server::stop() {
    m_impl->stop();
}

// The new settings are complete before they are swapped in: a failure
// throws here and leaves the running ones untouched.
void Server::reload(const TlsConfig& tls) {
    m_impl->state().replace_tls(make_tls_settings(tls));
}

std::uint16_t Server::port() const {
    return m_impl->port();
}

std::uint64_t Server::evicted() const {
    return m_impl->state().evicted();
}

Server::Handshakes Server::handshakes() const {
    return m_impl->state().handshakes();
}

std::size_t Server::stuck() const {
    return m_impl->state().stuck();
}

std::function<void(std::thread::id)> Server::overrun_notice() const {
    return [weak = m_impl->state_pointer()](std::thread::id thread) {
        if (const auto state = weak.lock()) {
            state->expire_on(thread);
        }
    };
}

}  // namespace otpbox::api
