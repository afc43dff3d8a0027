#pragma once

#include <openssl/ssl.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace otpbox::api {

// A TLS connection that OpenSSL reads and writes on the socket itself, for
// Beast's HTTP reads and writes. Asio's ssl::stream keeps four 17 KiB
// buffers of its own for the connection's whole life; here OpenSSL's record
// buffers are the only ones, and SSL_MODE_RELEASE_BUFFERS frees them while
// the connection is idle.
//
// Every wait of the socket ends at the deadline set last: the operation then
// fails with beast::error::timeout, as on a beast::tcp_stream. One operation
// at a time, on the socket's executor, which must be a strand.
class TlsStream {
  public:
    using executor_type = boost::asio::ip::tcp::socket::executor_type;
    using error_code = boost::system::error_code;

    // Throws when OpenSSL cannot make the connection's SSL object.
    TlsStream(boost::asio::ip::tcp::socket socket, SSL_CTX* context);
    ~TlsStream();
    TlsStream(const TlsStream&) = delete;
    TlsStream& operator=(const TlsStream&) = delete;

    [[nodiscard]] executor_type get_executor() { return m_core->socket.get_executor(); }
    [[nodiscard]] SSL* native_handle() { return m_core->ssl.get(); }
    void expires_after(std::chrono::steady_clock::duration timeout);
    void close();

    template <typename Token>
    auto async_handshake(Token&& token) {
        return run([this] { return handshake_step(); }, std::forward<Token>(token));
    }

    // close_notify (RFC 8446 6.1), then the peer's.
    template <typename Token>
    auto async_shutdown(Token&& token) {
        return run([this] { return shutdown_step(); }, std::forward<Token>(token));
    }

    // Until the peer sends something, or OpenSSL holds some already: an idle
    // connection waits here without a buffer of its own.
    template <typename Token>
    auto async_wait_for_data(Token&& token) {
        return run(
            [this, waited = false]() mutable { return data_step(std::exchange(waited, true)); },
            std::forward<Token>(token));
    }

    // After a handshake that failed with an alert: TLS is over, so this
    // reads the socket itself, and the bytes are not TLS records any more.
    template <typename Token>
    auto async_read_raw(boost::asio::mutable_buffer buffer, Token&& token) {
        return run([this, buffer] { return raw_read_step(buffer); }, std::forward<Token>(token));
    }
    // Ends the sending side of TCP (a FIN after whatever was written).
    void shutdown_send();

    template <typename MutableBuffers, typename Token>
    auto async_read_some(const MutableBuffers& buffers, Token&& token) {
        const auto buffer = first_nonempty(boost::asio::buffer_sequence_begin(buffers),
                                           boost::asio::buffer_sequence_end(buffers));
        return run([this, buffer] { return read_step(buffer); }, std::forward<Token>(token));
    }

    // Several small buffers (an HTTP header and its body) go out as one
    // record: they are copied together first.
    template <typename ConstBuffers, typename Token>
    auto async_write_some(const ConstBuffers& buffers, Token&& token) {
        std::shared_ptr<std::vector<char>> gathered;
        auto buffer = first_nonempty(boost::asio::buffer_sequence_begin(buffers),
                                     boost::asio::buffer_sequence_end(buffers));
        if (buffer.size() < kGatherLimit && boost::asio::buffer_size(buffers) > buffer.size()) {
            gathered = std::make_shared<std::vector<char>>(
                std::min(boost::asio::buffer_size(buffers), kGatherLimit));
            boost::asio::buffer_copy(boost::asio::buffer(*gathered), buffers);
            buffer = boost::asio::buffer(*gathered);
        }
        return run([this, buffer, gathered] { return write_step(buffer); },
                   std::forward<Token>(token));
    }

  private:
    enum class Want { nothing, read, write };

    // One OpenSSL call's outcome: done (with an error or not), or a wait.
    struct Progress {
        Want want = Want::nothing;
        error_code error;
        std::size_t bytes = 0;
    };

    struct SslFree {
        void operator()(SSL* ssl) const noexcept { SSL_free(ssl); }
    };

    // Shared with a pending deadline's handler, which may run after the
    // stream has gone.
    struct Core {
        explicit Core(boost::asio::ip::tcp::socket connected)
            : socket(std::move(connected)), timer(socket.get_executor()) {}
        boost::asio::ip::tcp::socket socket;
        boost::asio::steady_timer timer;
        std::unique_ptr<SSL, SslFree> ssl;
        std::chrono::steady_clock::time_point deadline =
            std::chrono::steady_clock::time_point::max();
        std::uint64_t waits = 0;  // the number of the pending wait, or of the last one
        bool waiting = false;
        bool timed_out = false;
    };

    static constexpr std::size_t kGatherLimit = 16 * 1024;

    template <typename Iterator>
    static auto first_nonempty(Iterator first, Iterator last)
        -> decltype(boost::asio::buffer(*first)) {
        for (auto buffer = first; buffer != last; ++buffer) {
            if (boost::asio::buffer(*buffer).size() > 0) {
                return boost::asio::buffer(*buffer);
            }
        }
        return {};
    }

    template <typename Call>
    [[nodiscard]] Progress attempt(Call call);
    [[nodiscard]] Progress handshake_step();
    [[nodiscard]] Progress data_step(bool waited);
    [[nodiscard]] Progress read_step(boost::asio::mutable_buffer buffer);
    [[nodiscard]] Progress write_step(boost::asio::const_buffer buffer);
    [[nodiscard]] Progress shutdown_step();
    [[nodiscard]] Progress raw_read_step(boost::asio::mutable_buffer buffer);
    [[nodiscard]] Progress outcome(int result, std::size_t bytes);
    void arm_deadline();
    [[nodiscard]] error_code end_wait(error_code error);

    // Repeats an OpenSSL step, waiting on the socket in between, until it
    // is done. The handler never runs inside the initiating call.
    template <typename Step>
    struct Operation {
        TlsStream& stream;
        Step step;
        enum class State { starting, waiting, finishing } state = State::starting;
        Progress result{};

        template <typename Self>
        void operator()(Self& self, error_code error = {}) {
            if (state == State::finishing) {
                self.complete(result.error, result.bytes);
                return;
            }
            if (state == State::waiting) {
                error = stream.end_wait(error);
                if (error) {
                    self.complete(error, 0);
                    return;
                }
            }
            const auto before = state;
            result = step();
            if (result.want == Want::nothing) {
                if (before == State::starting) {
                    state = State::finishing;
                    boost::asio::post(stream.get_executor(), std::move(self));
                    return;
                }
                self.complete(result.error, result.bytes);
                return;
            }
            state = State::waiting;
            stream.arm_deadline();
            stream.m_core->socket.async_wait(result.want == Want::read
                                                 ? boost::asio::socket_base::wait_read
                                                 : boost::asio::socket_base::wait_write,
                                             std::move(self));
        }
    };

    template <typename Step, typename Token>
    auto run(Step step, Token&& token) {
        return boost::asio::async_compose<Token, void(error_code, std::size_t)>(
            Operation<Step>{*this, std::move(step)}, token, m_core->socket);
    }

    std::shared_ptr<Core> m_core;
};

}  // namespace otpbox::api
