#pragma once

// The threads that run request handlers. A handler may be stuck in a call
// that cannot be cancelled (a stalled HSM); running it here keeps the io
// threads free, so its connection can answer 503 at the deadline. The
// abandoned worker is left to finish and another takes its place.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

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

    // The work's deadline has passed. Queued work then never runs; running
    // work keeps its thread, which no longer counts as a worker, and a new
    // worker starts in its place (at most `count` of them stand in at once);
    // from then on its transactions do not commit (otpbox/firmware/
    // commit_gate.hpp). `finished`: its answer is on the way, or it has
    // committed work and its answer must be waited for. `committing`: a
    // transaction of it is committing now; ask again shortly.
    enum class Abandoned { yes, finished, committing };
    Abandoned abandon(Ticket& ticket);

    // Called by running work when its answer is ready, before it sends it:
    // false when the work was abandoned meanwhile (its answer must not go).
    [[nodiscard]] static bool finish_current();

    // Takes no more work and waits up to `patience` for running work that
    // was not abandoned.
    void stop(std::chrono::milliseconds patience);

    // Abandoned work that has not finished yet.
    [[nodiscard]] std::size_t stuck() const;

  private:
    struct Shared;
    static void work(const std::shared_ptr<Shared>& shared);
    static void start_worker(const std::shared_ptr<Shared>& shared);
    [[nodiscard]] static std::vector<std::function<void()>> stop_locked(Shared& shared);

    std::shared_ptr<Shared> m_shared;
};

class Workers::Ticket {
  public:
    // committed: a transaction of it has committed; its answer must go out.
    enum State : int { queued, running, committing, committed, finished, abandoned };

  private:
    friend class Workers;
    // Changed by compare-and-swap: the work's thread moves it between
    // running, committing and finished while abandon() may end it.
    std::atomic<int> m_state{queued};
    std::function<void()> m_work;    // under the pool's lock
    std::function<void()> m_expire;  // under the pool's lock
};

}  // namespace otpbox::api
