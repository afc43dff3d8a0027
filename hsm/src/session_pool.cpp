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

// No other thread is inside the pool now (see the header), so nothing waits.
SessionPool::~SessionPool() {
    std::vector<CK_SESSION_HANDLE> dropped;
    {
        const std::lock_guard lock(m_mutex);
        dropped = drop_connection_locked();
    }
    close_dropped(dropped);
}

CK_RV SessionPool::call_login(CK_SESSION_HANDLE session, const SecureBytes& pin) {
    return m_module->api().C_Login(
        session, CKU_USER,
        reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<std::uint8_t*>(pin.bytes().data())),
        pin.size());
}

HsmError SessionPool::login_error(CK_RV rv) const {
    return HsmError(rv, "login to token \"" + m_config.token_label + "\" failed: " + ckr_name(rv));
}

void SessionPool::login(CK_SESSION_HANDLE session) {
    const auto pin = read_pin_file(m_config.pin_file);
    const CK_RV rv = call_login(session, pin);
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        throw login_error(rv);
    }
}

// A PIN the token refused is not tried again: each try counts towards the
// token locking it. From now on every caller is told why.
void SessionPool::refuse_pin_locked(const std::string& state, const std::string& why) {
    m_pin_refused = true;
    m_state = state;
    m_detail = why;
}

void SessionPool::throw_if_pin_refused_locked() const {
    if (m_pin_refused) {
        throw HsmError(Fault::pin, "not logging in again: " + m_detail);
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

// The sessions leave the pool's books at once, so that the generation moves
// on and every caller sees the connection gone; the module closes them
// later, without the lock.
std::vector<CK_SESSION_HANDLE> SessionPool::drop_connection_locked() {
    auto dropped = std::move(m_idle);
    m_idle.clear();
    // Leased sessions are in use: each is closed when its lease ends.
    m_retired.insert(m_leased.begin(), m_leased.end());
    m_leased.clear();
    m_open = 0;
    m_overran.clear();
    if (m_login_session != CK_INVALID_HANDLE) {
        dropped.push_back(m_login_session);
        m_login_session = CK_INVALID_HANDLE;
    }
    m_keys.clear();
    m_connected = false;
    ++m_generation;
    if (!dropped.empty()) {
        ++m_closing;
    }
    m_returned.notify_all();
    return dropped;
}

// A module that hangs in C_CloseSession holds up only this caller: health()
// answers meanwhile, and other callers are told at once that the token is
// gone. The token is not looked for again until this returns.
void SessionPool::close_dropped(const std::vector<CK_SESSION_HANDLE>& sessions) {
    if (sessions.empty()) {
        return;
    }
    auto& fn = m_module->api();
    for (const auto session : sessions) {
        fn.C_CloseSession(session);
    }
    const std::lock_guard lock(m_mutex);
    --m_closing;
}

void SessionPool::disconnect(std::uint64_t generation, const std::string& why) {
    std::vector<CK_SESSION_HANDLE> dropped;
    {
        const std::lock_guard lock(m_mutex);
        if (generation != m_generation) {
            return;
        }
        dropped = lose_token_locked(why);
    }
    close_dropped(dropped);
}

std::vector<CK_SESSION_HANDLE> SessionPool::lose_token_locked(const std::string& why) {
    auto dropped = drop_connection_locked();
    m_state = "token_gone";
    m_detail = why;
    m_next_attempt = std::chrono::steady_clock::now() + kReconnectBackoff;
    return dropped;
}

// As a reconnect does, the module is called without the pool's lock: a
// module that hangs in C_Login holds up only this caller, health() answers,
// and other callers go on with their sessions. Only one caller logs in at a
// time; the others wait for it, at most their call deadline.
void SessionPool::login_again(std::uint64_t generation) {
    const auto pin = read_pin_file(m_config.pin_file);
    std::unique_lock lock(m_mutex);
    throw_if_pin_refused_locked();
    if (m_logging_in) {
        wait_for_login(lock);
        return;
    }
    if (!m_connected || generation != m_generation) {
        return;
    }
    const auto session = m_login_session;
    m_logging_in = true;
    lock.unlock();
    const auto outcome = m_watch.run(session, generation, [&] { return call_login(session, pin); });
    lock.lock();
    m_logging_in = false;
    m_login_ended.notify_all();
    const bool current = generation == m_generation;
    if (outcome.overran && current) {
        m_overran.erase(m_overran.find(session));
    }
    logged_in_again(lock, outcome, current);
}

// Returns once another caller's login has ended: logged in, or failed for a
// reason the retry meets again.
void SessionPool::wait_for_login(std::unique_lock<std::mutex>& lock) {
    const auto ended = [this] { return !m_logging_in; };
    if (m_config.call_timeout.count() <= 0) {
        m_login_ended.wait(lock, ended);
    } else if (!m_login_ended.wait_for(lock, m_config.call_timeout, ended)) {
        throw HsmError(Fault::stalled, "another caller's login overran the deadline of " +
                                           std::to_string(m_config.call_timeout.count()) + " ms");
    }
    throw_if_pin_refused_locked();
}

// What a login_again's C_Login came back with; called with the lock held.
void SessionPool::logged_in_again(std::unique_lock<std::mutex>& lock,
                                  const CallWatch::Outcome& outcome, bool current) {
    const auto rv = outcome.rv;
    if (classify(rv) == Fault::pin) {
        // Refused whatever became of the connection meanwhile: the token
        // counted it.
        auto error = login_error(rv);
        refuse_pin_locked("not_logged_in", error.what());
        throw error;
    }
    if (outcome.overran) {
        throw HsmError(Fault::stalled, "C_Login overran its deadline of " +
                                           std::to_string(m_config.call_timeout.count()) + " ms");
    }
    if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN || !current) {
        return;
    }
    if (classify(rv) == Fault::token_gone) {
        const auto dropped = lose_token_locked("C_Login: " + ckr_name(rv));
        lock.unlock();
        close_dropped(dropped);
    }
    throw login_error(rv);
}

Lease SessionPool::acquire() {
    std::unique_lock lock(m_mutex);
    throw_if_pin_refused_locked();
    if (!m_connected) {
        // One caller looks for the token at a time, and only once what is
        // left of the lost one is closed; the others need not wait.
        if (m_connecting || m_closing > 0 || std::chrono::steady_clock::now() < m_next_attempt) {
            throw HsmError(Fault::token_gone, "the HSM is unreachable: " + m_detail);
        }
        try {
            connect(lock);
        } catch (const HsmError& error) {
            if (error.fault() == Fault::pin) {
                refuse_pin_locked("token_gone", error.what());
                throw;
            }
            m_state = "token_gone";
            m_detail = error.what();
            m_next_attempt = std::chrono::steady_clock::now() + kReconnectBackoff;
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
        const auto dropped = lose_token_locked("C_OpenSession: " + ckr_name(outcome.rv));
        lock.unlock();
        close_dropped(dropped);
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
    if (!m_connected || m_pin_refused) {
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
