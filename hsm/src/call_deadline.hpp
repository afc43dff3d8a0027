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
#include <list>
#include <mutex>
#include <thread>

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
        const auto entry = enter(session, generation);
        const CK_RV rv = call();
        return {rv, leave(entry)};
    }

  private:
    struct Entry {
        std::chrono::steady_clock::time_point deadline;
        CK_SESSION_HANDLE session;
        std::uint64_t generation;
        std::thread::id thread;
        bool overran = false;
    };
    using Entries = std::list<Entry>;

    Entries::iterator enter(CK_SESSION_HANDLE session, std::uint64_t generation);
    bool leave(Entries::iterator entry);
    void watch();

    std::chrono::milliseconds m_timeout;
    std::chrono::milliseconds m_tick;
    OnOverrun m_on_overrun;
    std::mutex m_mutex;
    std::condition_variable m_stop_requested;
    bool m_stopping = false;
    Entries m_entries;
    std::thread m_watcher;
};

}  // namespace otpbox::hsm
