#include "api/workers.hpp"

#include "otpbox/firmware/commit_gate.hpp"

#include <thread>
#include <unordered_map>
#include <vector>

namespace otpbox::api {

namespace {

// The ticket of the work running on this thread, as the commit gate the
// database asks before every COMMIT.
class TicketGate final : public firmware::CommitGate {
  public:
    explicit TicketGate(std::atomic<int>& state) : m_state(state) {}

    // From running, or committed by an earlier transaction of the request;
    // not once abandoned.
    bool enter() override {
        int expected = Workers::Ticket::running;
        if (m_state.compare_exchange_strong(expected, Workers::Ticket::committing)) {
            m_was_committed = false;
            return true;
        }
        expected = Workers::Ticket::committed;
        if (m_state.compare_exchange_strong(expected, Workers::Ticket::committing)) {
            m_was_committed = true;
            return true;
        }
        return false;
    }
    void leave(bool committed) override {
        m_state.store(committed || m_was_committed ? Workers::Ticket::committed
                                                   : Workers::Ticket::running);
    }

  private:
    std::atomic<int>& m_state;
    bool m_was_committed = false;  // on this thread only
};

thread_local std::atomic<int>* t_running = nullptr;

}  // namespace

// Workers are detached threads that hold this state, so that it outlives
// the Workers object while one of them is stuck.
struct Workers::Shared {
    std::mutex mutex;
    std::condition_variable ready;     // work queued, or stopping
    std::condition_variable finished;  // running work finished
    std::deque<std::shared_ptr<Ticket>> queue;
    std::unordered_map<std::thread::id, std::shared_ptr<Ticket>> running;
    std::size_t target = 0;   // workers wanted
    std::size_t workers = 0;  // live, not abandoned
    std::size_t busy = 0;     // live and running work
    std::size_t stuck = 0;    // abandoned and still running
    bool stopping = false;
};

Workers::Workers(std::size_t count) : m_shared(std::make_shared<Shared>()) {
    const std::lock_guard lock(m_shared->mutex);
    m_shared->target = count == 0 ? 1 : count;
    for (std::size_t i = 0; i < m_shared->target; ++i) {
        start_worker(m_shared);
    }
}

Workers::~Workers() {
    std::vector<std::function<void()>> never_run;
    {
        const std::lock_guard lock(m_shared->mutex);
        never_run = stop_locked(*m_shared);
    }
}

// Takes no more work and wakes the idle workers to end. The queued work is
// handed back, to be destroyed once the lock is let go: its captures may
// hold the last reference to whatever owns this pool.
std::vector<std::function<void()>> Workers::stop_locked(Shared& shared) {
    shared.stopping = true;
    std::vector<std::function<void()>> never_run;
    for (const auto& ticket : shared.queue) {
        ticket->m_state = Ticket::abandoned;
        never_run.push_back(std::move(ticket->m_work));
    }
    shared.queue.clear();
    shared.ready.notify_all();
    return never_run;
}

// Called with the lock held.
void Workers::start_worker(const std::shared_ptr<Shared>& shared) {
    ++shared->workers;
    std::thread([shared] { work(shared); }).detach();
}

void Workers::work(const std::shared_ptr<Shared>& shared) {
    std::unique_lock lock(shared->mutex);
    for (;;) {
        shared->ready.wait(lock, [&] { return shared->stopping || !shared->queue.empty(); });
        if (shared->stopping) {
            --shared->workers;
            shared->finished.notify_all();
            return;
        }
        const auto ticket = std::move(shared->queue.front());
        shared->queue.pop_front();
        int expected = Ticket::queued;
        if (!ticket->m_state.compare_exchange_strong(expected, Ticket::running)) {
            continue;
        }
        ++shared->busy;
        auto run = std::move(ticket->m_work);
        const auto self = std::this_thread::get_id();
        shared->running[self] = ticket;
        lock.unlock();
        TicketGate gate(ticket->m_state);
        firmware::set_thread_commit_gate(&gate);
        t_running = &ticket->m_state;
        try {
            run();
        } catch (...) {
            // The work answers for its own errors; nothing may end a worker.
        }
        t_running = nullptr;
        firmware::set_thread_commit_gate(nullptr);
        run = nullptr;  // its captures go before the lock is taken again
        lock.lock();
        shared->running.erase(self);
        ticket->m_expire = nullptr;
        for (int done : {Ticket::running, Ticket::committed}) {
            if (ticket->m_state.compare_exchange_strong(done, Ticket::finished)) {
                break;
            }
        }
        if (ticket->m_state.load() == Ticket::abandoned) {
            // Another worker took this one's place; it rejoins only where
            // the pool is short of one.
            --shared->stuck;
            if (shared->stopping || shared->workers >= shared->target) {
                shared->finished.notify_all();
                return;
            }
            ++shared->workers;
            continue;
        }
        --shared->busy;
        shared->finished.notify_all();
    }
}

std::shared_ptr<Workers::Ticket> Workers::submit(std::function<void()> work,
                                                 std::function<void()> expire) {
    auto ticket = std::make_shared<Ticket>();
    ticket->m_work = std::move(work);
    ticket->m_expire = std::move(expire);
    {
        const std::lock_guard lock(m_shared->mutex);
        if (m_shared->stopping) {
            ticket->m_state = Ticket::abandoned;
            return ticket;
        }
        m_shared->queue.push_back(ticket);
    }
    m_shared->ready.notify_one();
    return ticket;
}

// Work that never ran is destroyed after the lock is let go: its captures
// may hold the last reference to whatever owns this pool.
Workers::Abandoned Workers::abandon(Ticket& ticket) {
    std::function<void()> never_run;
    const std::lock_guard lock(m_shared->mutex);
    int state = Ticket::queued;
    if (ticket.m_state.compare_exchange_strong(state, Ticket::abandoned)) {
        never_run = std::move(ticket.m_work);
        return Abandoned::yes;
    }
    state = Ticket::running;
    if (ticket.m_state.compare_exchange_strong(state, Ticket::abandoned)) {
        --m_shared->busy;
        --m_shared->workers;
        ++m_shared->stuck;
        if (!m_shared->stopping && m_shared->stuck <= m_shared->target) {
            start_worker(m_shared);
        }
        m_shared->finished.notify_all();
        return Abandoned::yes;
    }
    switch (state) {
        case Ticket::committing:
            return Abandoned::committing;
        case Ticket::abandoned:
            return Abandoned::yes;
        default:
            return Abandoned::finished;
    }
}

bool Workers::finish_current() {
    if (t_running == nullptr) {
        return true;
    }
    for (int done : {Ticket::running, Ticket::committed}) {
        if (t_running->compare_exchange_strong(done, Ticket::finished)) {
            return true;
        }
    }
    return false;
}

void Workers::stop(std::chrono::milliseconds patience) {
    std::vector<std::function<void()>> never_run;
    std::unique_lock lock(m_shared->mutex);
    never_run = stop_locked(*m_shared);
    m_shared->finished.wait_for(lock, patience, [&] { return m_shared->busy == 0; });
    lock.unlock();
}

void Workers::expire_on(std::thread::id thread) {
    std::function<void()> expire;
    {
        const std::lock_guard lock(m_shared->mutex);
        const auto found = m_shared->running.find(thread);
        if (found == m_shared->running.end() || found->second->m_state.load() != Ticket::running) {
            return;
        }
        expire = found->second->m_expire;
    }
    if (expire) {
        expire();
    }
}

std::size_t Workers::stuck() const {
    const std::lock_guard lock(m_shared->mutex);
    return m_shared->stuck;
}

}  // namespace otpbox::api
