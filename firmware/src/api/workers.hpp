#pragma once

// The threads that run request handlers. A handler may be stuck in a call
// that cannot be cancelled (a stalled HSM); running it here keeps the io
// threads free, so its connection can answer 503 at the deadline. The
// abandoned worker is left to finish and another takes its place.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace otpbox::api {

class Workers {
  public:
    class Ticket;

    explicit Workers(std::size_t count);
    // Tells idle workers to end; waits for nobody (it may run on a worker).
    ~Workers();
    Workers(const Workers&) = delete;
    Workers& operator=(const Workers&) = delete;

    // Queues work; the ticket stands for it in abandon(). expire is what
    // expire_on() calls while the work runs.
    [[nodiscard]] std::shared_ptr<Ticket> submit(std::function<void()> work,
                                                 std::function<void()> expire);

    // The work running on that thread is held up past any hope (its HSM call
    // overran): calls its expire, which should lead to abandon(). Must not
    // block; nothing happens when that thread runs no work of this pool.
    void expire_on(std::thread::id thread);

    // The work's deadline has passed: false when it has already finished.
    // Queued work then never runs; running work keeps its thread, which no
    // longer counts as a worker, and a new worker starts in its place (at
    // most `count` of them stand in at once).
    bool abandon(Ticket& ticket);

    // Takes no more work and waits up to `patience` for running work that
    // was not abandoned.
    void stop(std::chrono::milliseconds patience);

    // Abandoned work that has not finished yet.
    [[nodiscard]] std::size_t stuck() const;

  private:
    struct Shared;
    static void work(const std::shared_ptr<Shared>& shared);
    static void start_worker(const std::shared_ptr<Shared>& shared);

    std::shared_ptr<Shared> m_shared;
};

class Workers::Ticket {
  private:
    friend class Workers;
    enum class State { queued, running, finished, abandoned };
    State m_state = State::queued;
    std::function<void()> m_work;
    std::function<void()> m_expire;
};

}  // namespace otpbox::api
