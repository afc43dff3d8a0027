#pragma once

// The daemon's poll work that may wait in the HSM (the key versions, the
// stored SIM PINs, the TLS key on a reload, the look for a lost token), each
// task on a thread of its own: a stalled token holds up that thread, not the
// poll, which goes on writing the status file and taking changed files. At
// most one task of a name runs at a time. The stop waits for them only as
// long as one HSM call may take (docs/architecture.md).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace otpbox::firmware::detail {

class PollTasks {
  public:
    // Set by stop(); a task looks at it between its HSM calls.
    using Stopping = std::atomic<bool>;
    using Work = std::function<void(const Stopping&)>;

    // Starts work on a detached thread, unless a task of that name still
    // runs: false then. work must not throw. What work holds is released
    // before the task counts as finished. Throws std::system_error when no
    // thread can be started.
    bool start(const std::string& name, Work work);

    [[nodiscard]] bool running(const std::string& name) const;

    void stop();

    // Waits up to limit for the tasks to finish; the names of those that
    // have not (still inside an HSM call).
    [[nodiscard]] std::vector<std::string> wait(std::chrono::milliseconds limit) const;

  private:
    // Shared with the threads, which may outlive the daemon's state.
    struct State {
        mutable std::mutex mutex;
        mutable std::condition_variable finished;
        std::set<std::string> running;
        Stopping stopping{false};
    };
    std::shared_ptr<State> m_state = std::make_shared<State>();
};

}  // namespace otpbox::firmware::detail
