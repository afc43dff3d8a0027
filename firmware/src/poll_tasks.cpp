#include "poll_tasks.hpp"

#include <system_error>
#include <thread>

namespace otpbox::firmware::detail {

bool PollTasks::start(const std::string& name, Work work) {
    {
        const std::lock_guard lock(m_state->mutex);
        if (!m_state->running.insert(name).second) {
            return false;
        }
    }
    auto task = [state = m_state, name, work = std::move(work)]() mutable {
        work(state->stopping);
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
    m_state->stopping = true;
}

std::vector<std::string> PollTasks::wait(std::chrono::milliseconds limit) const {
    std::unique_lock lock(m_state->mutex);
    (void)m_state->finished.wait_for(lock, limit, [&] { return m_state->running.empty(); });
    return {m_state->running.begin(), m_state->running.end()};
}

}  // namespace otpbox::firmware::detail
