#include "api/connection.hpp"

#include <openssl/ssl.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <iterator>
#include <string_view>

#include "api/subject_name.hpp"

namespace otpbox::api {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;

namespace {

// A refused request's client may still be sending its body; it gets this long
// to stop before the connection closes, so the close does not become a reset
// that destroys the answer before the client has read it.
constexpr std::chrono::seconds kLingerTime{2};
constexpr std::size_t kLingerBytes = 1024 * 1024;
constexpr std::size_t kFirstRead = 4096;
// How soon a deadline that met a commit in progress looks again.
constexpr std::chrono::milliseconds kCommitRecheck{20};

struct HeaderProblem {
    unsigned status;
    const char* code;
    std::string message;
};

// What a complete header asks that this server does not do.
std::optional<HeaderProblem> header_problem(
    const http::request_parser<http::string_body>::value_type& header) {
    // RFC 9112 section 6.1: HTTP/1.0 has no transfer codings, so such a
    // message's framing is faulty and its connection must not carry another.
    if (header.version() < 11 && header.count(http::field::transfer_encoding) > 0) {
        return HeaderProblem{400, "bad_request", "Transfer-Encoding is not allowed in HTTP/1.0"};
    }
    // RFC 9112 section 6.1: a transfer coding the server does not understand
    // gets 501; only "chunked" (alone) is understood here.
    const auto [first, last] = header.equal_range(http::field::transfer_encoding);
    for (auto field = first; field != last; ++field) {
        auto value = field->value();
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
            value.remove_prefix(1);
        }
        while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
            value.remove_suffix(1);
        }
        if (!beast::iequals(value, "chunked")) {
            return HeaderProblem{501, "not_implemented",
                                 "only the chunked transfer coding is understood"};
        }
    }
    // RFC 9112 section 3.2: a server MUST answer 400 to an HTTP/1.1 request
    // without Host, and to any request with more than one.
    const auto hosts = header.count(http::field::host);
    if (hosts > 1) {
        return HeaderProblem{400, "bad_request", "more than one Host header"};
    }
    if (hosts == 0 && header.version() >= 11) {
        return HeaderProblem{400, "bad_request", "an HTTP/1.1 request needs a Host header"};
    }
    if (header.count("Idempotency-Key") > 1) {
        return HeaderProblem{400, "invalid_request", "at most one Idempotency-Key header"};
    }
    // Two media types leave the body's meaning open (RFC 9110 section 5.3:
    // Content-Type is not a list).
    if (header.count(http::field::content_type) > 1) {
        return HeaderProblem{400, "invalid_request", "at most one Content-Type header"};
    }
    return std::nullopt;
}

bool is_http_error(const boost::system::error_code& error) {
    return error.category() == http::make_error_code(http::error::bad_target).category();
}

bool wants_continue(const http::request<http::string_body>& message) {
    return beast::iequals(message[http::field::expect], "100-continue");
}

}  // namespace

Connection::Connection(net::ip::tcp::socket socket, std::shared_ptr<ServerState> state)
    : m_state(std::move(state)),
      m_id(m_state->next_id()),
      m_tls(m_state->tls()),
      m_stream(std::move(socket), m_tls->context->native_handle()),
      m_deadline(m_stream.get_executor()) {}

Connection::~Connection() {
    m_state->forget(m_id);
}

void Connection::start() {
    net::dispatch(m_stream.get_executor(),
                  beast::bind_front_handler(&Connection::handshake, shared_from_this()));
}

void Connection::close() {
    net::post(m_stream.get_executor(), [self = shared_from_this()] { self->m_stream.close(); });
}

void Connection::handshake() {
    m_stream.expires_after(m_state->limits().handshake_timeout);
    m_stream.async_handshake(
        beast::bind_front_handler(&Connection::on_handshake, shared_from_this()));
}

void Connection::on_handshake(error_code error, std::size_t /*bytes*/) {
    if (error) {
        // OpenSSL's own errors are refusals it sent an alert for; a timeout
        // or a peer that went away needs nothing more.
        if (error.category() == net::error::get_ssl_category()) {
            m_state->refused_handshake(error.message());
            end_refused_handshake();
        }
        return;
    }
    // The verify callback already refused unlisted subjects; this looks the
    // role up for the requests to come, in the list the handshake checked.
    const X509* peer = SSL_get0_peer_certificate(m_stream.native_handle());
    if (peer == nullptr) {
        return;
    }
    m_subject = rfc2253_subject(*peer);
    const auto role = role_of(m_tls->clients, m_subject);
    if (!role) {
        return;
    }
    m_role = *role;
    m_state->authenticated(m_id, SSL_session_reused(m_stream.native_handle()) == 1);
    wait_for_request();
}

// Until a request's first byte arrives the idle timeout runs; from then on the
// whole request must arrive within the request timeout, however slowly the
// client trickles it.
void Connection::wait_for_request() {
    if (m_state->stopped()) {
        return;
    }
    if (m_buffer.size() > 0) {
        read_header();
        return;
    }
    // An idle connection keeps no buffer; the first bytes get one.
    m_buffer.shrink_to_fit();
    const auto& limits = m_state->limits();
    m_stream.expires_after(m_first_request ? limits.request_timeout : limits.idle_timeout);
    m_stream.async_wait_for_data(
        beast::bind_front_handler(&Connection::on_data, shared_from_this()));
}

void Connection::on_data(error_code error, std::size_t /*bytes*/) {
    if (error) {
        return;
    }
    m_stream.async_read_some(
        m_buffer.prepare(kFirstRead),
        beast::bind_front_handler(&Connection::on_first_bytes, shared_from_this()));
}

void Connection::on_first_bytes(error_code error, std::size_t bytes) {
    if (error) {
        return;
    }
    m_buffer.commit(bytes);
    read_header();
}

void Connection::read_header() {
    const auto& limits = m_state->limits();
    m_request_started = std::chrono::steady_clock::now();
    m_parser.emplace();
    m_parser->header_limit(static_cast<std::uint32_t>(limits.max_header));
    m_parser->body_limit(limits.max_body);
    m_parser->eager(false);  // each put() stops at the header's end
    m_header_bytes = 0;
    m_line_start = false;
    m_stream.expires_after(limits.request_timeout);
    parse_header();
}

// Beast's parser takes each field out of the buffer as soon as it is whole,
// and its header limit counts only the bytes still in the buffer: a header
// that arrives in pieces would pass it whatever its size. The limit on the
// whole section is counted here, as the parser takes the bytes.
void Connection::parse_header() {
    const auto limit = m_state->limits().max_header;
    while (!m_parser->is_header_done() && m_buffer.size() > 0) {
        error_code error;
        const auto used = m_parser->put(m_buffer.data(), error);
        const std::string_view parsed(static_cast<const char*>(m_buffer.data().data()), used);
        const bool folded = folds(parsed);
        m_header_bytes += used;
        m_buffer.consume(used);
        if (folded) {
            refuse(400, "bad_request", "a header field line is folded (obs-fold)");
            return;
        }
        if (error && error != http::error::need_more) {
            refuse_unreadable(error);
            return;
        }
        if (error || used == 0) {
            break;  // the rest of the section is still on its way
        }
    }
    if (m_parser->is_header_done()) {
        if (m_header_bytes > limit) {
            refuse_unreadable(http::error::header_limit);
            return;
        }
        on_header();
        return;
    }
    // Still no end of the section, and already as long as it may be.
    if (m_header_bytes + m_buffer.size() >= limit) {
        refuse_unreadable(http::error::header_limit);
        return;
    }
    m_stream.async_read_some(
        m_buffer.prepare(kFirstRead),
        beast::bind_front_handler(&Connection::on_header_bytes, shared_from_this()));
}

// A timeout, a reset or a close before the header is whole just ends the
// connection.
void Connection::on_header_bytes(error_code error, std::size_t bytes) {
    if (error) {
        return;
    }
    m_buffer.commit(bytes);
    parse_header();
}

// RFC 9112 section 5.2: a line that begins with a space or tab continues the
// field line before it (obs-fold); such a request is refused with 400 rather
// than joined. The same test refuses whitespace between the request line and
// the first field (section 2.2). The bytes the parser took are whole lines.
bool Connection::folds(std::string_view parsed) {
    for (const char c : parsed) {
        if (m_line_start && (c == ' ' || c == '\t')) {
            return true;
        }
        m_line_start = c == '\n';
    }
    return false;
}

void Connection::on_header() {
    const auto& header = m_parser->get();
    const auto fields = static_cast<std::size_t>(std::distance(header.begin(), header.end()));
    const auto max_fields = m_state->limits().max_header_fields;
    if (fields > max_fields) {
        refuse(431, "header_too_large",
               "the header has more than " + std::to_string(max_fields) + " fields");
        return;
    }
    if (const auto problem = header_problem(header)) {
        refuse(problem->status, problem->code, problem->message);
        return;
    }
    const auto length = m_parser->content_length();
    m_has_body = m_parser->chunked() || (length && *length > 0);

    // RFC 9110 section 10.1.1: a client that sent "Expect: 100-continue" may
    // wait for this interim answer before it sends the body.
    if (m_has_body && wants_continue(header)) {
        m_continue.emplace(http::status::continue_, header.version());
        http::async_write(
            m_stream, *m_continue,
            beast::bind_front_handler(&Connection::on_continue_sent, shared_from_this()));
        return;
    }
    read_body();
}

void Connection::on_continue_sent(error_code error, std::size_t /*bytes*/) {
    m_continue.reset();
    if (error) {
        return;
    }
    read_body();
}

void Connection::read_body() {
    if (m_parser->is_done()) {
        answer();
        return;
    }
    http::async_read(m_stream, m_buffer, *m_parser,
                     beast::bind_front_handler(&Connection::on_body, shared_from_this()));
}

void Connection::on_body(error_code error, std::size_t /*bytes*/) {
    if (error) {
        refuse_unreadable(error);
        return;
    }
    answer();
}

// A request that cannot be read whole gets an answer only when the client is
// still there to read it: a timeout, a reset or a close just ends it.
void Connection::refuse_unreadable(error_code error) {
    std::string method;
    std::string target;
    if (m_parser && m_parser->is_header_done()) {
        method = m_parser->get().method_string();
        target = m_parser->get().target();
    }
    const auto answer_with = [&](unsigned status, const char* code, const std::string& message) {
        log(method, target, status);
        send(error_answer(status, code, message), false);
    };
    if (error == http::error::body_limit) {
        answer_with(
            413, "too_large",
            "the body is larger than " + std::to_string(m_state->limits().max_body) + " bytes");
    } else if (error == http::error::header_limit) {
        answer_with(
            431, "header_too_large",
            "the header is larger than " + std::to_string(m_state->limits().max_header) + " bytes");
    } else if (is_http_error(error) && error != http::error::end_of_stream &&
               error != http::error::partial_message) {
        answer_with(400, "bad_request", "malformed HTTP request");
    }
}

void Connection::refuse(unsigned status, const char* code, const std::string& message) {
    const auto& header = m_parser->get();
    log(std::string(header.method_string()), std::string(header.target()), status);
    send(error_answer(status, code, message), false);
}

// The handler runs on a worker while the connection waits on its strand
// for whichever comes first: the answer or the deadline.
void Connection::answer() {
    if (m_state->stopped()) {
        return;
    }
    auto request = std::make_shared<const Request>(make_request());
    const bool keep_alive = m_parser->keep_alive();
    const auto answer = ++m_answers;
    auto work = [self = shared_from_this(), request, keep_alive, answer] {
        auto response = self->m_state->handle(*request);
        if (!Workers::finish_current()) {
            return;  // answered 503 at the deadline meanwhile
        }
        net::post(self->m_stream.get_executor(),
                  [self, request, keep_alive, answer, response = std::move(response)]() mutable {
                      self->on_handled(answer, *request, std::move(response), keep_alive);
                  });
    };
    // An HSM call of the handler overran: the deadline is now.
    auto expire = [weak = weak_from_this(), answer] {
        if (const auto self = weak.lock()) {
            net::post(self->m_stream.get_executor(), [self, answer] {
                if (self->m_handling && self->m_answers == answer) {
                    self->m_deadline.cancel();
                }
            });
        }
    };
    m_pool = &m_state->workers_for(request->target.substr(0, request->target.find('?')));
    m_handling = m_pool->submit(std::move(work), std::move(expire));
    m_deadline.expires_after(m_state->limits().answer_timeout);
    m_deadline.async_wait([self = shared_from_this(), request, handling = m_handling,
                           keep_alive](error_code /*cancelled*/) {
        self->on_deadline(handling, request, keep_alive);
    });
}

// A handler that finishes after its request was answered 503 finds another
// request, or none, in progress: its answer is dropped.
void Connection::on_handled(std::uint64_t answer, const Request& request, Response response,
                            bool keep_alive) {
    if (!m_handling || answer != m_answers || m_state->stopped()) {
        return;
    }
    m_handling.reset();
    m_deadline.cancel();  // on_deadline then finds nothing to do
    log(request.method_name, request.target, response.status);
    send(std::move(response), keep_alive);
}

// The timer ran out, or was cancelled: by the answer (then there is nothing
// left to do), or because an HSM call of the handler overran. The handler
// may still run on, but none of its transactions commits from the 503 on
// (otpbox/firmware/commit_gate.hpp): what it committed before stays, and a
// client that sent an Idempotency-Key gets that on its retry.
void Connection::on_deadline(const std::shared_ptr<Workers::Ticket>& ticket,
                             const std::shared_ptr<const Request>& request, bool keep_alive) {
    if (ticket != m_handling) {
        return;  // answered already
    }
    switch (m_pool->abandon(*ticket)) {
        case Workers::Abandoned::finished:
        case Workers::Abandoned::committing:
            // Its answer is on the way, or it has committed work and its own
            // answer must go out, or its COMMIT decides which: look again
            // shortly until on_handled has sent it.
            m_deadline.expires_after(kCommitRecheck);
            m_deadline.async_wait(
                [self = shared_from_this(), ticket, request, keep_alive](error_code /*cancelled*/) {
                    self->on_deadline(ticket, request, keep_alive);
                });
            return;
        case Workers::Abandoned::yes:
            break;
    }
    m_handling.reset();
    auto response =
        error_answer(503, "unavailable", "the request was not finished in time; try again later");
    response.headers.emplace_back("Retry-After", "5");
    log(request->method_name, request->target, response.status);
    // The connection stays: while the HSM is away, a new one could not even
    // finish its handshake.
    send(std::move(response), keep_alive);
}

Request Connection::make_request() const {
    const auto& message = m_parser->get();
    Request request;
    request.method = message.method();
    request.method_name = message.method_string();
    request.target = message.target();
    request.content_type = message[http::field::content_type];
    if (const auto key = message.find("Idempotency-Key"); key != message.end()) {
        request.idempotency_key = std::string(key->value());
    }
    request.body = message.body();
    // An empty chunked body (what a client streaming an empty POST sends) is
    // no body: it needs no Content-Type, as Content-Length: 0 needs none.
    request.has_body = !request.body.empty();
    request.client_subject = m_subject;
    request.role = m_role;
    return request;
}

bool Connection::answers_head() const {
    // The parser has taken bytes only once the request line was whole.
    if (m_parser && m_header_bytes > 0) {
        return m_parser->get().method() == http::verb::head;
    }
    const std::string_view unparsed(static_cast<const char*>(m_buffer.data().data()),
                                    m_buffer.size());
    return unparsed.starts_with("HEAD ");
}

void Connection::send(Response response, bool keep_alive) {
    const unsigned version =
        m_parser && m_parser->is_header_done() ? m_parser->get().version() : 11;
    const bool head = answers_head();
    m_response.emplace(to_http(std::move(response), version, keep_alive));
    m_serializer.emplace(*m_response);
    m_stream.expires_after(m_state->limits().request_timeout);
    auto done = beast::bind_front_handler(&Connection::on_sent, shared_from_this(), keep_alive);
    // RFC 9110 section 9.3.2: an answer to HEAD has the header GET would get,
    // Content-Length included, and never a body; a body would be read as the
    // start of the next answer on the connection.
    if (head) {
        http::async_write_header(m_stream, *m_serializer, std::move(done));
    } else {
        http::async_write(m_stream, *m_serializer, std::move(done));
    }
}

void Connection::on_sent(bool keep_alive, error_code error, std::size_t /*bytes*/) {
    m_serializer.reset();
    m_response.reset();
    if (error) {
        return;
    }
    if (!keep_alive) {
        // A whole request was read: end TLS properly with close_notify (RFC
        // 8446 6.1). A refused one may still have its body on the way, which
        // the linger reads away so that the close does not destroy the answer.
        if (m_parser && m_parser->is_done()) {
            shut_down();
        } else {
            linger();
        }
        return;
    }
    m_first_request = false;
    m_parser.reset();
    wait_for_request();
}

void Connection::shut_down() {
    m_stream.expires_after(kLingerTime);
    m_stream.async_shutdown([self = shared_from_this()](error_code, std::size_t) {
        // The peer's close_notify, its close or the timeout: the connection ends.
    });
}

void Connection::linger() {
    m_stream.expires_after(kLingerTime);
    m_discarded = 0;
    m_discard = std::make_unique<std::array<char, 4096>>();
    discard_more();
}

// A client that finished its part of the handshake (in TLS 1.3, before the
// server has checked its certificate) already sends its request; closing
// with that unread makes the kernel answer with a reset, which can destroy
// the alert before the client reads it. So the server ends its side after
// the alert and reads away what comes, as after a refused request.
void Connection::end_refused_handshake() {
    m_stream.shutdown_send();
    m_tls_over = true;
    linger();
}

void Connection::discard_more() {
    auto done = beast::bind_front_handler(&Connection::on_discarded, shared_from_this());
    if (m_tls_over) {
        m_stream.async_read_raw(net::buffer(*m_discard), std::move(done));
        return;
    }
    m_stream.async_read_some(net::buffer(*m_discard), std::move(done));
}

void Connection::on_discarded(error_code error, std::size_t bytes) {
    m_discarded += bytes;
    if (error || m_discarded > kLingerBytes) {
        return;
    }
    discard_more();
}

void Connection::log(const std::string& method, const std::string& target, unsigned status) const {
    AccessEntry entry;
    entry.method = method;
    entry.path = target.substr(0, target.find('?'));
    entry.status = status;
    entry.client_subject = m_subject;
    entry.duration = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - m_request_started);
    m_state->log_access(entry);
}

}  // namespace otpbox::api
