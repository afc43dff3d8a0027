#pragma once

// The token's sessions: one logged-in session held for the process's life
// (closing the last session of an application logs it out and invalidates
// its object handles, PKCS#11 v2.40 5.6), and a pool of sessions, one per
// operation in flight, with a bounded wait when all are busy.
//
// The pool must outlive every call into it: it is destroyed only when no
// other thread is inside one of its methods or holds a Lease, a reconnect or
// a login running without the lock included. It does not wait for them,
// since a thread back from the module would touch the pool after any such
// wait had ended. The Hsm that owns it is handed out as a shared_ptr, and
// every thread that calls it holds a reference for the length of the call
// (otpboxd's tasks, the TLS key's signatures), so the last reference goes,
// and the pool with it, only once every call has returned.

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
#include "otpbox/hsm/error.hpp"
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
    // Throws HsmError: token_gone while the token cannot be reached or what
    // is left of a lost one is still being closed; pin when the token
    // refused the PIN, on a reconnect or in login_again(), then and on every
    // later call, without logging in again.
    [[nodiscard]] Lease acquire();

    // Drops every session and cached handle of the connection a lease of
    // that generation was taken from, if it is still the current one: a call
    // that failed on an older connection leaves a newer one alone. The next
    // acquire reconnects.
    void disconnect(std::uint64_t generation, const std::string& why);

    // Logs in again on the held session of the connection a lease of that
    // generation was taken from; nothing when that connection has been
    // dropped since (a reconnect logs in). C_Login runs without the lock and
    // is watched like any other call; a caller that finds another's login
    // under way waits for it, at most call_timeout. Throws HsmError: pin
    // when the token refuses the PIN (then and on every later call, as on a
    // reconnect); stalled when C_Login or the other caller's login overran;
    // token_gone, after dropping the connection, when the token went away.
    void login_again(std::uint64_t generation);

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
    [[nodiscard]] CK_RV call_login(CK_SESSION_HANDLE session, const SecureBytes& pin);
    [[nodiscard]] HsmError login_error(CK_RV rv) const;
    void refuse_pin_locked(const std::string& state, const std::string& why);
    void throw_if_pin_refused_locked() const;
    void wait_for_login(std::unique_lock<std::mutex>& lock);
    void logged_in_again(std::unique_lock<std::mutex>& lock, const CallWatch::Outcome& outcome,
                         bool current);
    // Takes every session of the connection out of the pool and returns
    // those to close, which the caller hands to close_dropped() once it has
    // let go of the lock.
    [[nodiscard]] std::vector<CK_SESSION_HANDLE> drop_connection_locked();
    [[nodiscard]] std::vector<CK_SESSION_HANDLE> lose_token_locked(const std::string& why);
    void close_dropped(const std::vector<CK_SESSION_HANDLE>& sessions);

    HsmConfig m_config;
    std::shared_ptr<Module> m_module;
    std::mutex m_mutex;
    std::condition_variable m_returned;
    std::condition_variable m_login_ended;
    bool m_connected = false;
    bool m_connecting = false;   // a caller looks for the token, without the lock
    bool m_logging_in = false;   // a caller logs in again, without the lock
    bool m_pin_refused = false;  // by the token: never tried again
    // Callers closing a dropped connection's sessions, without the lock.
    // Until they are done nobody reconnects, so no session the module opens
    // can reuse a handle that is still to be closed.
    std::size_t m_closing = 0;
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
