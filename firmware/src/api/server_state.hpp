#pragma once

#include <boost/asio/ssl/context.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "api/workers.hpp"
#include "otpbox/firmware/api/server.hpp"

namespace otpbox::api {

class Connection;

// The TLS context a connection is accepted with, and the allow-list its
// verify callback checks. A connection holds the pair by shared_ptr for its
// whole life, so a reload never pulls the context out from under a stream.
struct TlsSettings {
    std::shared_ptr<boost::asio::ssl::context> context;
    std::vector<AllowedClient> clients;
};

// Builds the settings from the configuration; throws like make_tls_context.
[[nodiscard]] std::shared_ptr<const TlsSettings> make_tls_settings(const TlsConfig& tls);

// What every connection of one server shares.
class ServerState {
  public:
    ServerState(std::shared_ptr<const TlsSettings> tls, ServerLimits limits, Handler handler);

    // The settings for a connection accepted now.
    [[nodiscard]] std::shared_ptr<const TlsSettings> tls() const;
    // From now on new connections get these.
    void replace_tls(std::shared_ptr<const TlsSettings> tls);
    [[nodiscard]] const ServerLimits& limits() const { return m_limits; }
    [[nodiscard]] bool stopped() const { return m_stopped; }

    // Runs the handler; an escaping exception becomes a 500.
    [[nodiscard]] Response handle(const Request& request) const;
    // The workers that run requests for that path (without its query).
    [[nodiscard]] Workers& workers_for(std::string_view path);
    // Abandoned work of both pools that has not finished yet.
    [[nodiscard]] std::size_t stuck() const;
    void expire_on(std::thread::id thread);
    void stop_workers(std::chrono::milliseconds patience);
    void log_access(const AccessEntry& entry) const;
    void set_access_log(AccessLog log) { m_access_log = std::move(log); }

    // Registers a new connection; false when the server is stopped, or when
    // max_connections are open and every one of them has finished its
    // handshake. At the limit, the oldest connection still in its handshake
    // is closed to make room: connections that never send a byte cannot
    // keep a portal that completes its handshake out.
    [[nodiscard]] bool admit(const std::shared_ptr<Connection>& connection, std::uint64_t id);
    [[nodiscard]] std::uint64_t evicted() const { return m_evicted; }
    // The connection's client passed the handshake, in full or resumed: it
    // is no longer evicted.
    void authenticated(std::uint64_t id, bool resumed);
    // A handshake failed with an alert: counted, with its reason kept.
    void refused_handshake(std::string reason);
    [[nodiscard]] Server::Handshakes handshakes() const;
    void forget(std::uint64_t id);
    [[nodiscard]] std::uint64_t next_id() { return m_next_id++; }
    // Marks the server stopped and hands back every live connection.
    [[nodiscard]] std::vector<std::shared_ptr<Connection>> stop();

  private:
    mutable std::mutex m_tls_mutex;  // guards the pointer; the settings never change
    std::shared_ptr<const TlsSettings> m_tls;
    ServerLimits m_limits;
    Handler m_handler;
    AccessLog m_access_log;
    std::atomic<bool> m_stopped{false};
    std::atomic<std::uint64_t> m_next_id{1};
    std::mutex m_mutex;
    std::unordered_map<std::uint64_t, std::weak_ptr<Connection>> m_connections;
    std::set<std::uint64_t> m_in_handshake;  // ids of m_connections, oldest first
    std::atomic<std::uint64_t> m_evicted{0};
    std::atomic<std::uint64_t> m_full_handshakes{0};
    std::atomic<std::uint64_t> m_resumed_handshakes{0};
    mutable std::mutex m_refused_mutex;
    std::uint64_t m_refused_handshakes = 0;
    std::string m_last_refusal;
    Workers m_workers;
    Workers m_monitor_workers;
};

}  // namespace otpbox::api
