#include "api/server_state.hpp"

#include <algorithm>

#include "api/connection.hpp"
#include "api/http_answers.hpp"
#include "api/tls_context.hpp"

namespace otpbox::api {

std::shared_ptr<const TlsSettings> make_tls_settings(const TlsConfig& tls) {
    return std::make_shared<const TlsSettings>(TlsSettings{make_tls_context(tls), tls.clients});
}

ServerState::ServerState(std::shared_ptr<const TlsSettings> tls, ServerLimits limits,
                         Handler handler)
    : m_tls(std::move(tls)),
      m_limits(limits),
      m_handler(std::move(handler)),
      m_workers(limits.workers),
      m_monitor_workers(limits.monitor_paths.empty() ? 1 : limits.monitor_workers) {}

Workers& ServerState::workers_for(std::string_view path) {
    const auto& monitor = m_limits.monitor_paths;
    const bool monitoring = std::find(monitor.begin(), monitor.end(), path) != monitor.end();
    return monitoring ? m_monitor_workers : m_workers;
}

std::size_t ServerState::stuck() const {
    return m_workers.stuck() + m_monitor_workers.stuck();
}

void ServerState::expire_on(std::thread::id thread) {
    m_workers.expire_on(thread);
    m_monitor_workers.expire_on(thread);
}

// Both pools wait at the same time, so the patience is not spent twice.
void ServerState::stop_workers(std::chrono::milliseconds patience) {
    const auto until = std::chrono::steady_clock::now() + patience;
    m_workers.stop(patience);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    m_monitor_workers.stop(std::max(left, std::chrono::milliseconds(0)));
}

std::shared_ptr<const TlsSettings> ServerState::tls() const {
    const std::lock_guard lock(m_tls_mutex);
    return m_tls;
}

void ServerState::replace_tls(std::shared_ptr<const TlsSettings> tls) {
    const std::lock_guard lock(m_tls_mutex);
    m_tls = std::move(tls);
}

Response ServerState::handle(const Request& request) const {
    try {
        return m_handler(request);
    } catch (...) {
        // The handler's own logging saw the cause; the client learns nothing
        // of the inside, and the connection stays usable.
        return error_answer(500, "internal", "internal error");
    }
}

void ServerState::log_access(const AccessEntry& entry) const {
    if (!m_access_log) {
        return;
    }
    try {
        m_access_log(entry);
    } catch (...) {
        // A failing log must not take the connection down with it.
    }
}

bool ServerState::admit(const std::shared_ptr<Connection>& connection, std::uint64_t id) {
    std::shared_ptr<Connection> evicted;
    {
        const std::lock_guard lock(m_mutex);
        if (m_stopped) {
            return false;
        }
        if (m_connections.size() >= m_limits.max_connections) {
            if (m_in_handshake.empty()) {
                return false;
            }
            const auto oldest = *m_in_handshake.begin();
            m_in_handshake.erase(m_in_handshake.begin());
            evicted = m_connections[oldest].lock();
            m_connections.erase(oldest);
            ++m_evicted;
        }
        m_connections.emplace(id, connection);
        m_in_handshake.insert(id);
    }
    if (evicted) {
        evicted->close();
    }
    return true;
}

void ServerState::authenticated(std::uint64_t id, bool resumed) {
    ++(resumed ? m_resumed_handshakes : m_full_handshakes);
    const std::lock_guard lock(m_mutex);
    m_in_handshake.erase(id);
}

void ServerState::refused_handshake(std::string reason) {
    const std::lock_guard lock(m_refused_mutex);
    ++m_refused_handshakes;
    m_last_refusal = std::move(reason);
}

Server::Handshakes ServerState::handshakes() const {
    const std::lock_guard lock(m_refused_mutex);
    return {m_full_handshakes, m_resumed_handshakes, m_refused_handshakes, m_last_refusal};
}

void ServerState::forget(std::uint64_t id) {
    const std::lock_guard lock(m_mutex);
    m_connections.erase(id);
    m_in_handshake.erase(id);
}

std::vector<std::shared_ptr<Connection>> ServerState::stop() {
    const std::lock_guard lock(m_mutex);
    m_stopped = true;
    std::vector<std::shared_ptr<Connection>> live;
    for (const auto& [id, weak] : m_connections) {
        if (auto connection = weak.lock()) {
            live.push_back(std::move(connection));
        }
    }
    return live;
}

}  // namespace otpbox::api
