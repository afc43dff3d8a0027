#include "session_pool.hpp"

#include <algorithm>

#include "otpbox/hsm/error.hpp"

namespace otpbox::hsm {

namespace {

constexpr auto kReconnectBackoff = std::chrono::seconds(1);

}  // namespace

Lease::~Lease() {
    if (m_pool == nullptr) {
        return;
    }
    using Return = SessionPool::Return;
    m_pool->release(m_session, m_generation, m_broken ? Return::close : Return::idle);
}

Lease::Lease(Lease&& other) noexcept
    : m_pool(other.m_pool),
      m_session(other.m_session),
      m_generation(other.m_generation),
      m_broken(other.m_broken) {
    other.m_pool = nullptr;
}

SessionPool::SessionPool(const HsmConfig& config)
    : m_config(config),
      m_module(Module::load(config.module_path, config.environment)),
      m_watch(config.call_timeout,
              [this](CK_SESSION_HANDLE session, std::uint64_t generation, std::thread::id thread) {
                  overran(session, generation, thread);
              }) {
    std::unique_lock lock(m_mutex);
    connect(lock);
}

SessionPool::~SessionPool() {
    std::lock_guard lock(m_mutex);
    close_all_locked();
}

void SessionPool::login(CK_SESSION_HANDLE session) {
    auto pin = read_pin_file(m_config.pin_file);
    auto& fn = m_module->api();
    const CK_RV rv =
        fn.C_Login(session, CKU_USER,
                   reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<std::uint8_t*>(pin.bytes().data())),
                   pin.size());
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        throw HsmError(rv,
                       "login to token \"" + m_config.token_label + "\" failed: " + ckr_name(rv));
    }
}

// The module's calls run without the pool's lock, so a module that hangs in
// them holds up only this caller: meanwhile health() answers, and other
// callers are told at once that the token is gone.
void SessionPool::connect(std::unique_lock<std::mutex>& lock) {
    m_connecting = true;
    lock.unlock();
    CK_SLOT_ID slot = 0;
    CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
    try {
        auto& fn = m_module->api();
        const auto found = m_module->find_token_reinitialising(m_config.token_label);
        if (!found) {
            throw HsmError(Fault::config,
                           "no initialised token labelled \"" + m_config.token_label + "\"");
        }
        slot = *found;
        Module::check(
            fn.C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &session),
            "C_OpenSession");
        try {
            login(session);
        } catch (...) {
            fn.C_CloseSession(session);
            throw;
        }
    } catch (...) {
        lock.lock();
        m_connecting = false;
        throw;
    }
    lock.lock();
    m_connecting = false;
    m_slot = slot;
    m_login_session = session;
    m_connected = true;
    ++m_generation;
    m_state = "ok";
    m_detail.clear();
}

void SessionPool::close_all_locked() {
    auto& fn = m_module->api();
    for (const auto session : m_idle) {
        fn.C_CloseSession(session);
    }
    m_idle.clear();
    // Leased sessions are in use: each is closed when its lease ends.
    m_retired.insert(m_leased.begin(), m_leased.end());
    m_leased.clear();
    m_open = 0;
    m_overran.clear();
    if (m_login_session != CK_INVALID_HANDLE) {
        fn.C_CloseSession(m_login_session);
        m_login_session = CK_INVALID_HANDLE;
    }
    m_keys.clear();
    m_connected = false;
    ++m_generation;
    m_returned.notify_all();
}

void SessionPool::disconnect(const std::string& why) {
    std::lock_guard lock(m_mutex);
    lose_token_locked(why);
}

void SessionPool::lose_token_locked(const std::string& why) {
    close_all_locked();
    m_state = "token_gone";
    m_detail = why;
    m_next_attempt = std::chrono::steady_clock::now() + kReconnectBackoff;
}

void SessionPool::login_again() {
    std::lock_guard lock(m_mutex);
    if (m_connected) {
        login(m_login_session);
    }
}

Lease SessionPool::acquire() {
    std::unique_lock lock(m_mutex);
    if (!m_connected) {
        // A PIN the token refused is not tried again: each try counts
        // towards the token locking it, and every caller is told why.
        if (m_pin_refused) {
            throw HsmError(Fault::pin, "not logging in again: " + m_detail);
        }
        // One caller looks for the token at a time; the others need not wait.
        if (m_connecting || std::chrono::steady_clock::now() < m_next_attempt) {
            throw HsmError(Fault::token_gone, "the HSM is unreachable: " + m_detail);
        }
        try {
            connect(lock);
        } catch (const HsmError& error) {
            m_state = "token_gone";
            m_detail = error.what();
            m_next_attempt = std::chrono::steady_clock::now() + kReconnectBackoff;
            if (error.fault() == Fault::pin) {
                m_pin_refused = true;
                throw;
            }
            throw HsmError(Fault::token_gone,
                           std::string("the HSM is unreachable: ") + error.what());
        }
    }
    const auto deadline = std::chrono::steady_clock::now() + m_config.call_timeout;
    while (m_idle.empty() && m_open >= m_config.max_sessions) {
        if (m_returned.wait_until(lock, deadline) == std::cv_status::timeout) {
            throw HsmError(Fault::stalled, "every HSM session is busy");
        }
        if (!m_connected) {
            throw HsmError(Fault::token_gone, "the HSM went away");
        }
    }
    if (!m_idle.empty()) {
        const auto session = m_idle.back();
        m_idle.pop_back();
        m_leased.insert(session);
        return Lease(*this, session, m_generation);
    }
    return open_session(lock);
}

// The new session is counted before the lock is let go, so that a module
// slow to open one holds up neither health nor the callers that find an
// idle session; the opening is watched like any other call.
Lease SessionPool::open_session(std::unique_lock<std::mutex>& lock) {
    ++m_open;
    const auto generation = m_generation;
    const auto slot = m_slot;
    lock.unlock();
    CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
    const auto outcome = m_watch.run(CK_INVALID_HANDLE, generation, [&] {
        return m_module->api().C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr,
                                             nullptr, &session);
    });
    lock.lock();
    const bool current = generation == m_generation;
    if (outcome.overran && current) {
        m_overran.erase(m_overran.find(CK_INVALID_HANDLE));
    }
    if (outcome.rv == CKR_OK && !outcome.overran && current) {
        m_leased.insert(session);
        return Lease(*this, session, generation);
    }
    if (outcome.rv == CKR_OK) {
        // Too late, or opened on a connection that has been renewed since:
        // nobody else knows this session.
        m_module->api().C_CloseSession(session);
    }
    if (current) {
        --m_open;
        m_returned.notify_one();
    }
    if (outcome.overran) {
        throw HsmError(Fault::stalled, "C_OpenSession overran its deadline of " +
                                           std::to_string(m_config.call_timeout.count()) + " ms");
    }
    if (outcome.rv == CKR_OK) {
        throw HsmError(Fault::session_lost,
                       "the HSM connection was renewed while a session opened");
    }
    if (classify(outcome.rv) == Fault::token_gone && current) {
        lose_token_locked("C_OpenSession: " + ckr_name(outcome.rv));
    }
    throw HsmError(outcome.rv, "C_OpenSession failed: " + ckr_name(outcome.rv));
}

// The module's C_CloseSession runs after the pool's lock is let go, so a
// module slow to close holds up neither health nor other callers.
void SessionPool::release(CK_SESSION_HANDLE session, std::uint64_t generation, Return how) {
    bool close = false;
    {
        std::lock_guard lock(m_mutex);
        if (generation != m_generation) {
            // Leased when the connection was dropped. Handles are unique
            // among open sessions, so one that now names a live session was
            // closed by the module long ago and reused.
            const bool reused = m_leased.contains(session) || m_login_session == session ||
                                std::find(m_idle.begin(), m_idle.end(), session) != m_idle.end();
            close = m_retired.erase(session) > 0 && !reused;
        } else {
            m_leased.erase(session);
            if (how == Return::idle) {
                m_idle.push_back(session);
            } else {
                m_overran.erase(session);
                --m_open;
                close = true;
            }
            m_returned.notify_one();
        }
    }
    if (close) {
        m_module->api().C_CloseSession(session);
    }
}

void SessionPool::overran(CK_SESSION_HANDLE session, std::uint64_t generation,
                          std::thread::id thread) {
    {
        const std::lock_guard lock(m_mutex);
        if (generation == m_generation) {
            m_overran.insert(session);
        }
    }
    const std::lock_guard lock(m_listener_mutex);
    if (m_listener) {
        m_listener(thread);
    }
}

// Once this returns, the listener it replaced is no longer running.
void SessionPool::set_overrun_listener(OverrunListener listener) {
    const std::lock_guard lock(m_listener_mutex);
    m_listener = std::move(listener);
}

std::optional<CK_OBJECT_HANDLE> SessionPool::cached_key(std::string_view label,
                                                        CK_ULONG object_class) {
    std::lock_guard lock(m_mutex);
    const auto found = m_keys.find(std::pair<std::string_view, CK_ULONG>(label, object_class));
    if (found == m_keys.end()) {
        return std::nullopt;
    }
    return found->second;
}

void SessionPool::cache_key(std::string_view label, CK_ULONG object_class, CK_OBJECT_HANDLE handle,
                            std::uint64_t generation) {
    std::lock_guard lock(m_mutex);
    if (generation == m_generation) {
        m_keys[{std::string(label), object_class}] = handle;
    }
}

void SessionPool::forget_keys() {
    std::lock_guard lock(m_mutex);
    m_keys.clear();
}

HsmHealth SessionPool::health() {
    std::lock_guard lock(m_mutex);
    if (!m_connected) {
        return {false, m_state, m_detail};
    }
    if (!m_overran.empty()) {
        return {false, "stalled",
                std::to_string(m_overran.size()) + " call(s) overran the deadline of " +
                    std::to_string(m_config.call_timeout.count()) + " ms and have not returned"};
    }
    return {true, "ok", ""};
}

std::uint64_t SessionPool::generation() {
    std::lock_guard lock(m_mutex);
    return m_generation;
}

}  // namespace otpbox::hsm
