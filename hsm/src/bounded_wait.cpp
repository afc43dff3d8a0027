#include "bounded_wait.hpp"

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

namespace otpbox::hsm {

namespace {

struct Waiting {
    std::mutex mutex;
    std::condition_variable finished;
    bool done = false;
};

// Threads kept between jobs: starting one per job would cost more than a
// signature. A thread whose job overran joins the idle ones when the job
// returns; idle threads end after a while. The runner lives as long as the
// process, since its threads may outlive any owner.
class Runner {
  public:
    static Runner& instance() {
        static auto* runner = new Runner();
        return *runner;
    }

    void submit(std::function<void()> job) {
        const std::lock_guard lock(m_mutex);
        m_jobs.push_back(std::move(job));
        if (m_idle == 0) {
            std::thread([this] { work(); }).detach();
        } else {
            m_ready.notify_one();
        }
    }

  private:
    void work() {
        std::unique_lock lock(m_mutex);
        for (;;) {
            ++m_idle;
            const bool woken =
                m_ready.wait_for(lock, std::chrono::seconds(30), [&] { return !m_jobs.empty(); });
            --m_idle;
            if (!woken) {
                return;
            }
            auto job = std::move(m_jobs.front());
            m_jobs.pop_front();
            lock.unlock();
            job();
            job = nullptr;
            lock.lock();
        }
    }

    std::mutex m_mutex;
    std::condition_variable m_ready;
    std::deque<std::function<void()>> m_jobs;
    std::size_t m_idle = 0;
};

}  // namespace

bool run_within(std::function<void()> work, std::chrono::milliseconds timeout) {
    auto waiting = std::make_shared<Waiting>();
    Runner::instance().submit([waiting, work = std::move(work)] {
        try {
            work();
        } catch (...) {
            // The work reports through what it captured.
        }
        {
            const std::lock_guard lock(waiting->mutex);
            waiting->done = true;
        }
        waiting->finished.notify_one();
    });
    std::unique_lock lock(waiting->mutex);
    return waiting->finished.wait_for(lock, timeout, [&] { return waiting->done; });
}

}  // namespace otpbox::hsm
