#pragma once

// The token's sessions: one logged-in session held for the process's life
// (closing the last session of an application logs it out and invalidates
// its object handles, PKCS#11 v2.40 5.6), and a pool of sessions, one per
// operation in flight, with a bounded wait when all are busy.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "call_deadline.hpp"
#include "module.hpp"
#include "otpbox/hsm/hsm.hpp"

namespace otpbox::hsm {

class SessionPool;

// A session taken from the pool; back to the pool when released, closed
// when marked broken (as one whose call overran is, once it returns).
class Lease {
  public:
    Lease(SessionPool& pool, CK_SESSION_HANDLE session, std::uint64_t generation)
        : m_pool(&pool), m_session(session), m_generation(generation) {}
    ~Lease();
    Lease(Lease&& other) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;

    [[nodiscard]] CK_SESSION_HANDLE handle() const { return m_session; }
    [[nodiscard]] std::uint64_t generation() const { return m_generation; }
    void mark_broken() { m_broken = true; }

  private:
    SessionPool* m_pool;
    CK_SESSION_HANDLE m_session;
    std::uint64_t m_generation;
    bool m_broken = false;
};

class SessionPool {
  public:
    explicit SessionPool(const HsmConfig& config);
    ~SessionPool();

    // Connects when needed (find the token, open the login session, log in).
    // Throws HsmError: token_gone while the token cannot be reached; pin
    // when the token refused the PIN on a reconnect, then and on every
    // later call, without logging in again.
    [[nodiscard]] Lease acquire();

    // Drops every session and cached handle; the next acquire reconnects.
    void disconnect(const std::string& why);

    // Logs in again on the held session.
    void login_again();

    [[nodiscard]] CK_FUNCTION_LIST& api() const { return m_module->api(); }
    [[nodiscard]] CallWatch& watch() { return m_watch; }
    void set_overrun_listener(OverrunListener listener);

    // Key handles by label and object class, valid for the current connection.
    [[nodiscard]] std::optional<CK_OBJECT_HANDLE> cached_key(std::string_view label,
                                                             CK_ULONG object_class);
    void cache_key(std::string_view label, CK_ULONG object_class, CK_OBJECT_HANDLE handle,
                   std::uint64_t generation);
    void forget_keys();

    [[nodiscard]] HsmHealth health();
    [[nodiscard]] std::uint64_t generation();

  private:
    friend class Lease;
    enum class Return { idle, close };
    void release(CK_SESSION_HANDLE session, std::uint64_t generation, Return how);
    [[nodiscard]] Lease open_session(std::unique_lock<std::mutex>& lock);
    // A call on this leased session (CK_INVALID_HANDLE: a C_OpenSession)
    // overran its deadline. The session still counts against max_sessions,
    // and health says the HSM stalls, until the call returns.
    void overran(CK_SESSION_HANDLE session, std::uint64_t generation, std::thread::id thread);
    // Called with the lock held, and returns with it held.
    void connect(std::unique_lock<std::mutex>& lock);
    void login(CK_SESSION_HANDLE session);
    void close_all_locked();
    void lose_token_locked(const std::string& why);

    HsmConfig m_config;
    std::shared_ptr<Module> m_module;
    std::mutex m_mutex;
    std::condition_variable m_returned;
    bool m_connected = false;
    bool m_connecting = false;   // a caller looks for the token, without the lock
    bool m_pin_refused = false;  // by the token on a reconnect: never tried again
    CK_SLOT_ID m_slot = 0;
    CK_SESSION_HANDLE m_login_session = CK_INVALID_HANDLE;
    std::vector<CK_SESSION_HANDLE> m_idle;
    std::size_t m_open = 0;                      // pooled sessions open, idle or leased
    std::multiset<CK_SESSION_HANDLE> m_overran;  // leased, their call past its deadline
    std::set<CK_SESSION_HANDLE> m_leased;        // of this connection, in use
    std::set<CK_SESSION_HANDLE> m_retired;       // in use when a connection was dropped
    std::uint64_t m_generation = 0;
    // Looked up without building a string: a lookup is on every operation.
    struct KeyNameLess {
        using is_transparent = void;
        template <class A, class B>
        bool operator()(const A& a, const B& b) const {
            return std::pair<std::string_view, CK_ULONG>(a.first, a.second) <
                   std::pair<std::string_view, CK_ULONG>(b.first, b.second);
        }
    };
    std::map<std::pair<std::string, CK_ULONG>, CK_OBJECT_HANDLE, KeyNameLess> m_keys;
    std::string m_state = "ok";
    std::string m_detail;
    std::chrono::steady_clock::time_point m_next_attempt{};
    std::mutex m_listener_mutex;  // held while the listener runs
    OverrunListener m_listener;
    CallWatch m_watch;  // last: stops watching before the rest goes
};

}  // namespace otpbox::hsm
