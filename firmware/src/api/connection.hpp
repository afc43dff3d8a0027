#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "api/http_answers.hpp"
#include "api/server_state.hpp"
#include "api/tls_stream.hpp"

namespace otpbox::api {

// One client: the TLS handshake, then HTTP/1.1 requests one after the other
// on the same connection. Every step runs on the connection's strand and has
// a deadline; any failure closes the connection.
class Connection : public std::enable_shared_from_this<Connection> {
  public:
    // The socket's executor must be a strand of its own.
    Connection(boost::asio::ip::tcp::socket socket, std::shared_ptr<ServerState> state);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    [[nodiscard]] std::uint64_t id() const { return m_id; }
    void start();
    // Closes the socket from any thread.
    void close();

  private:
    using error_code = boost::system::error_code;

    void handshake();
    void on_handshake(error_code error, std::size_t bytes);
    void wait_for_request();
    void on_data(error_code error, std::size_t bytes);
    void on_first_bytes(error_code error, std::size_t bytes);
    void read_header();
    void parse_header();
    void on_header_bytes(error_code error, std::size_t bytes);
    [[nodiscard]] bool folds(std::string_view parsed);
    void on_header();
    void on_continue_sent(error_code error, std::size_t bytes);
    void read_body();
    void on_body(error_code error, std::size_t bytes);
    void answer();
    void on_handled(std::uint64_t answer, const Request& request, Response response,
                    bool keep_alive);
    void on_deadline(const std::shared_ptr<Workers::Ticket>& ticket,
                     const std::shared_ptr<const Request>& request, bool keep_alive);
    void refuse_unreadable(error_code error);
    // Answers a request whose header is whole with an error, and closes.
    void refuse(unsigned status, const char* code, const std::string& message);
    // Whether the request being answered is a HEAD, also when its header
    // could not be parsed.
    [[nodiscard]] bool answers_head() const;
    void send(Response response, bool keep_alive);
    void on_sent(bool keep_alive, error_code error, std::size_t bytes);
    void shut_down();
    void linger();
    // After a handshake refused with an alert.
    void end_refused_handshake();
    void discard_more();
    void on_discarded(error_code error, std::size_t bytes);
    [[nodiscard]] Request make_request() const;
    void log(const std::string& method, const std::string& target, unsigned status) const;

    std::shared_ptr<ServerState> m_state;
    std::uint64_t m_id;
    std::shared_ptr<const TlsSettings> m_tls;  // before m_stream, which uses its context
    TlsStream m_stream;
    boost::asio::steady_timer m_deadline;         // the handler's, on the strand
    std::shared_ptr<Workers::Ticket> m_handling;  // the handler's work, while it runs
    Workers* m_pool = nullptr;                    // the pool m_handling is in
    std::uint64_t m_answers = 0;                  // requests handed to the handler so far
    boost::beast::flat_buffer m_buffer;
    std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> m_parser;
    std::optional<HttpResponse> m_response;
    std::optional<boost::beast::http::response_serializer<boost::beast::http::string_body>>
        m_serializer;  // m_response's, while it is written
    std::optional<boost::beast::http::response<boost::beast::http::empty_body>> m_continue;
    std::unique_ptr<std::array<char, 4096>> m_discard;  // only while lingering
    std::size_t m_discarded = 0;
    bool m_tls_over = false;  // the linger reads the socket, not TLS
    std::string m_subject;
    Role m_role = Role::portal;
    bool m_first_request = true;
    bool m_has_body = false;
    std::size_t m_header_bytes = 0;  // of the request's header section, parsed so far
    bool m_line_start = false;       // the header bytes parsed so far end with a line
    std::chrono::steady_clock::time_point m_request_started;
};

}  // namespace otpbox::api
