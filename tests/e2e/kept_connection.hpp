#pragma once

// One mutual-TLS connection to a DevInstance, kept alive for many requests.
// The server's key is in the HSM and every full handshake needs a signature
// from it, so what the API answers while the HSM is out can only be seen on
// a connection made before.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "dev_instance.hpp"

namespace otpbox::e2e {

class KeptConnection {
  public:
    using Session = std::shared_ptr<SSL_SESSION>;

    // Connects and completes the handshake now, offering `session` to resume
    // when there is one; throws when either fails.
    explicit KeptConnection(const DevInstance& dev, const std::string& client = "portal",
                            const Session& session = nullptr)
        : m_tls(client_context(dev, client)), m_stream(m_io, m_tls) {
        m_stream.set_verify_callback(boost::asio::ssl::host_name_verification("localhost"));
        if (session) {
            SSL_set_session(m_stream.native_handle(), session.get());
        }

        const boost::asio::ip::tcp::endpoint server(boost::asio::ip::address_v4::loopback(),
                                                    dev.port);
        run_bounded("connect",
                    [&](auto done) { m_stream.next_layer().async_connect(server, done); });
        run_bounded("handshake", [&](auto done) {
            m_stream.async_handshake(boost::asio::ssl::stream_base::client, done);
        });
    }

    // One request on this connection, answered within kTimeout or thrown.
    HttpAnswer call(boost::beast::http::verb method, const std::string& path,
                    const std::optional<std::string>& json = std::nullopt) {
        namespace http = boost::beast::http;
        http::request<http::string_body> request{method, path, 11};
        request.set(http::field::host, "localhost");
        if (json) {
            request.set(http::field::content_type, "application/json");
            request.body() = *json;
        }
        request.prepare_payload();
        run_bounded("write", [&](auto done) { http::async_write(m_stream, request, done); });

        http::response<http::string_body> response;
        run_bounded("read",
                    [&](auto done) { http::async_read(m_stream, m_buffer, response, done); });

        HttpAnswer answer;
        answer.status = static_cast<int>(response.result_int());
        answer.body = response.body();
        for (const auto& field : response.base()) {
            answer.headers +=
                std::string(field.name_string()) + ": " + std::string(field.value()) + "\r\n";
        }
        return answer;
    }

    // Whether the handshake resumed the session offered.
    [[nodiscard]] bool resumed() { return SSL_session_reused(m_stream.native_handle()) == 1; }

    // The session to offer on a later connection, once a ticket has come
    // (in TLS 1.3 after the handshake: call this after a request); null
    // when the server gave none.
    [[nodiscard]] Session session() {
        SSL_SESSION* kept = SSL_get1_session(m_stream.native_handle());
        if (kept != nullptr && SSL_SESSION_is_resumable(kept) != 1) {
            SSL_SESSION_free(kept);
            kept = nullptr;
        }
        return kept == nullptr ? nullptr : Session(kept, SSL_SESSION_free);
    }

  private:
    static constexpr auto kTimeout = std::chrono::seconds(20);

    // Set up before the stream is made: its SSL object copies the context.
    static boost::asio::ssl::context client_context(const DevInstance& dev,
                                                    const std::string& client) {
        boost::asio::ssl::context context(boost::asio::ssl::context::tls_client);
        context.set_verify_mode(boost::asio::ssl::verify_peer);
        context.load_verify_file((dev.root() / "pki/ca.pem").string());
        context.use_certificate_chain_file((dev.root() / "pki" / (client + ".crt")).string());
        context.use_private_key_file((dev.root() / "pki" / (client + ".key")).string(),
                                     boost::asio::ssl::context::pem);
        return context;
    }

    // Starts one asynchronous step and runs it to its end; the stream's
    // expiry ends a step the server never answers.
    template <class Start>
    void run_bounded(const char* step, Start start) {
        boost::system::error_code result = boost::asio::error::would_block;
        m_stream.next_layer().expires_after(kTimeout);
        start([&result](boost::system::error_code error, auto&&...) { result = error; });
        m_io.restart();
        m_io.run();
        if (result) {
            throw boost::system::system_error(result, step);
        }
    }

    boost::asio::io_context m_io;
    boost::asio::ssl::context m_tls;
    boost::beast::ssl_stream<boost::beast::tcp_stream> m_stream;
    boost::beast::flat_buffer m_buffer;
};

}  // namespace otpbox::e2e
