#pragma once

// The daemon's poll work that may wait in the HSM (the key versions, the
// stored SIM PINs, the TLS key on a reload, the look for a lost token), each
// task on a thread of its own: a stalled token holds up that thread, not the
// poll, which goes on writing the status file and taking changed files. At
// most one task of a name runs at a time.
//
// A task may make several HSM calls in turn (the stored SIM PINs, one per
// modem), and begins each through Task::begin_call(). Once stop() was called
// no call begins, so a task has at most the call it is in to finish, and a
// timely one ends within one call deadline of the stop, however many calls
// it would have made: that is what the stop waits for (docs/architecture.md).
// Known shortcoming: a call begun here is one step of the task's work (one
// PIN opened, one key's version), which may make several calls of the
// module, each with a deadline of its own (a session opened, the key looked
// up first), so a slow but timely step can still outlast one deadline.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace otpbox::firmware::detail {

class PollTasks {
    struct State;

  public:
    // What a task's work is given.
    class Task {
      public:
        // Called before each HSM call the work makes. False once stop() was
        // called: the work then returns without making the call.
        [[nodiscard]] bool begin_call() const;

      private:
        friend class PollTasks;
        Task(std::shared_ptr<State> state, std::string name)
            : m_state(std::move(state)), m_name(std::move(name)) {}

        std::shared_ptr<State> m_state;
        std::string m_name;
    };
    using Work = std::function<void(const Task&)>;

    // Starts work on a detached thread, unless a task of that name still
    // runs: false then. work must not throw. What work holds is released
    // before the task counts as finished. Throws std::system_error when no
    // thread can be started.
    bool start(const std::string& name, Work work);

    [[nodiscard]] bool running(const std::string& name) const;

    void stop();

    // Waits for the tasks to finish, giving each limit from the later of
    // the stop (before one, this wait's start) and the HSM call it began
    // last; the names of those still running then (still inside an HSM
    // call). After stop() it lasts at most limit; before, as long as the
    // tasks go on beginning calls in time.
    [[nodiscard]] std::vector<std::string> wait(std::chrono::milliseconds limit) const;

  private:
    using Clock = std::chrono::steady_clock;

    // Shared with the threads, which may outlive the daemon's state.
    struct State {
        mutable std::mutex mutex;
        mutable std::condition_variable finished;
        // By name: when its last HSM call began, or the task did.
        std::map<std::string, Clock::time_point> running;
        std::optional<Clock::time_point> stopped;  // when stop() was first called
    };
    std::shared_ptr<State> m_state = std::make_shared<State>();
};

}  // namespace otpbox::firmware::detail
