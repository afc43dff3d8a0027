#pragma once

#include <boost/asio/ssl/context.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "otpbox/firmware/api/server.hpp"

namespace otpbox::api {

class Connection;

// What every connection of one server shares. Connections hold it by
// shared_ptr, so the TLS context outlives the last stream that uses it.
class ServerState {
  public:
    ServerState(std::unique_ptr<boost::asio::ssl::context> tls, std::vector<AllowedClient> clients,
                ServerLimits limits, Handler handler);

    [[nodiscard]] boost::asio::ssl::context& tls() { return *m_tls; }
    [[nodiscard]] const std::vector<AllowedClient>& clients() const { return m_clients; }
    [[nodiscard]] const ServerLimits& limits() const { return m_limits; }
    [[nodiscard]] bool stopped() const { return m_stopped; }

    // Runs the handler; an escaping exception becomes a 500.
    [[nodiscard]] Response handle(const Request& request) const;
    void log_access(const AccessEntry& entry) const;
    void set_access_log(AccessLog log) { m_access_log = std::move(log); }

    // Registers a new connection; false when max_connections are open or the
    // server is stopped.
    [[nodiscard]] bool admit(const std::shared_ptr<Connection>& connection, std::uint64_t id);
    void forget(std::uint64_t id);
    [[nodiscard]] std::uint64_t next_id() { return m_next_id++; }
    // Marks the server stopped and hands back every live connection.
    [[nodiscard]] std::vector<std::shared_ptr<Connection>> stop();

  private:
    std::unique_ptr<boost::asio::ssl::context> m_tls;
    std::vector<AllowedClient> m_clients;
    ServerLimits m_limits;
    Handler m_handler;
    AccessLog m_access_log;
    std::atomic<bool> m_stopped{false};
    std::atomic<std::uint64_t> m_next_id{1};
    std::mutex m_mutex;
    std::unordered_map<std::uint64_t, std::weak_ptr<Connection>> m_connections;
};

}  // namespace otpbox::api
