#include "call_deadline.hpp"

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

namespace otpbox::hsm {

namespace {

struct CallState {
    std::mutex mutex;
    std::condition_variable finished;
    bool done = false;
    bool abandoned = false;
    CK_RV rv = CKR_OK;
    std::function<void()> on_late_return;
};

void run_call(const std::shared_ptr<CallState>& state, const std::function<CK_RV()>& call) {
    const CK_RV rv = call();
    std::function<void()> late;
    {
        std::lock_guard lock(state->mutex);
        state->done = true;
        state->rv = rv;
        if (state->abandoned) {
            late = std::move(state->on_late_return);
        }
    }
    state->finished.notify_one();
    if (late) {
        late();
    }
}

// Threads that run the calls, kept between calls: starting a thread per call
// cost more than the HMAC it waited for. A thread whose call overran is not
// lost: it joins the idle ones when the call returns. Idle threads end after
// a while, so a burst leaves nothing behind. The runner lives as long as the
// process (its threads may outlive any owner).
class CallRunner {
  public:
    static CallRunner& instance() {
        static auto* runner = new CallRunner();
        return *runner;
    }

    void submit(std::shared_ptr<CallState> state, std::function<CK_RV()> call) {
        std::lock_guard lock(m_mutex);
        m_jobs.push_back({std::move(state), std::move(call)});
        if (m_idle == 0) {
            std::thread([this] { work(); }).detach();
        } else {
            m_ready.notify_one();
        }
    }

  private:
    struct Job {
        std::shared_ptr<CallState> state;
        std::function<CK_RV()> call;
    };

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
            run_call(job.state, job.call);
            lock.lock();
        }
    }

    std::mutex m_mutex;
    std::condition_variable m_ready;
    std::deque<Job> m_jobs;
    std::size_t m_idle = 0;
};

}  // namespace

std::optional<CK_RV> call_with_deadline(std::function<CK_RV()> call,
                                        std::chrono::milliseconds timeout,
                                        std::function<void()> on_late_return) {
    if (timeout.count() <= 0) {
        return call();
    }
    auto state = std::make_shared<CallState>();
    CallRunner::instance().submit(state, std::move(call));

    std::unique_lock lock(state->mutex);
    if (state->finished.wait_for(lock, timeout, [&] { return state->done; })) {
        return state->rv;
    }
    state->abandoned = true;
    state->on_late_return = std::move(on_late_return);
    return std::nullopt;
}

}  // namespace otpbox::hsm
