#pragma once

// Deadlines for PKCS#11 calls. A module call cannot be cancelled, so it runs
// on the caller's thread, and a watcher thread looks at the calls in flight a
// few times per deadline. A call found past its deadline is marked overrun and
// on_overrun runs on the watcher thread while the caller is still in the call;
// the caller learns it when the call returns.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include <p11-kit/pkcs11.h>

namespace otpbox::hsm {

class CallWatch {
  public:
    // Runs on the watcher thread for a call that overran, with the session
    // and pool generation it was made on and the thread that waits in it.
    using OnOverrun = std::function<void(CK_SESSION_HANDLE, std::uint64_t, std::thread::id)>;

    // A zero timeout watches nothing: calls simply run.
    CallWatch(std::chrono::milliseconds timeout, OnOverrun on_overrun);
    ~CallWatch();
    CallWatch(const CallWatch&) = delete;
    CallWatch& operator=(const CallWatch&) = delete;

    struct Outcome {
        CK_RV rv = CKR_OK;
        bool overran = false;
    };

    template <class Call>
    Outcome run(CK_SESSION_HANDLE session, std::uint64_t generation, Call&& call) {
        if (m_timeout.count() <= 0) {
            return {call(), false};
        }
        Entry entry{std::chrono::steady_clock::now() + m_timeout, session, generation,
                    std::this_thread::get_id()};
        enter(entry);
        const CK_RV rv = call();
        return {rv, leave(entry)};
    }

  private:
    // Lives on the caller's stack for the call; the watcher sees it between
    // enter() and leave().
    struct Entry {
        std::chrono::steady_clock::time_point deadline;
        CK_SESSION_HANDLE session;
        std::uint64_t generation;
        std::thread::id thread;
        bool overran = false;
    };

    void enter(Entry& entry);
    bool leave(Entry& entry);
    void watch();

    std::chrono::milliseconds m_timeout;
    std::chrono::milliseconds m_tick;
    OnOverrun m_on_overrun;
    std::mutex m_mutex;
    std::condition_variable m_stop_requested;
    bool m_stopping = false;
    std::vector<Entry*> m_entries;  // the calls in flight
    std::thread m_watcher;
};

}  // namespace otpbox::hsm
