#include "poll_tasks.hpp"

#include <algorithm>
#include <system_error>
#include <thread>

namespace otpbox::firmware::detail {

bool PollTasks::Task::begin_call() const {
    const std::lock_guard lock(m_state->mutex);
    if (m_state->stopped) {
        return false;
    }
    m_state->running[m_name] = Clock::now();
    return true;
}

bool PollTasks::start(const std::string& name, Work work) {
    {
        const std::lock_guard lock(m_state->mutex);
        if (!m_state->running.emplace(name, Clock::now()).second) {
            return false;
        }
    }
    auto task = [state = m_state, name, work = std::move(work)]() mutable {
        work(Task(state, name));
        work = nullptr;  // before it counts as finished: the daemon may end then
        const std::lock_guard lock(state->mutex);
        state->running.erase(name);
        state->finished.notify_all();
    };
    try {
        std::thread(std::move(task)).detach();
    } catch (const std::system_error&) {
        const std::lock_guard lock(m_state->mutex);
        m_state->running.erase(name);  // the next poll tries again
        throw;
    }
    return true;
}

bool PollTasks::running(const std::string& name) const {
    const std::lock_guard lock(m_state->mutex);
    return m_state->running.contains(name);
}

void PollTasks::stop() {
    const std::lock_guard lock(m_state->mutex);
    if (!m_state->stopped) {
        m_state->stopped = Clock::now();
    }
}

// A task's deadline is limit after the call it began last, as the HSM's own
// deadline runs from each call, but never sooner than limit after the stop
// (before one, after this wait's start): a call begun before the stop ends
// by then if it is in time, and none begins after it.
std::vector<std::string> PollTasks::wait(std::chrono::milliseconds limit) const {
    const auto begun = Clock::now();
    std::unique_lock lock(m_state->mutex);
    for (;;) {
        const auto from = m_state->stopped.value_or(begun);
        const auto now = Clock::now();
        std::vector<std::string> overdue;
        std::optional<Clock::time_point> next;
        for (const auto& [name, call] : m_state->running) {
            const auto deadline = std::max(from, call) + limit;
            if (deadline <= now) {
                overdue.push_back(name);
            } else if (!next || deadline < *next) {
                next = deadline;
            }
        }
        if (!next) {
            return overdue;
        }
        (void)m_state->finished.wait_until(lock, *next);
    }
}

}  // namespace otpbox::firmware::detail
