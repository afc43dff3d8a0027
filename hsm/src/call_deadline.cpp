#include "call_deadline.hpp"

#include <condition_variable>
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

}  // namespace

std::optional<CK_RV> call_with_deadline(std::function<CK_RV()> call,
                                        std::chrono::milliseconds timeout,
                                        std::function<void()> on_late_return) {
    if (timeout.count() <= 0) {
        return call();
    }
    auto state = std::make_shared<CallState>();
    std::thread(run_call, state, std::move(call)).detach();

    std::unique_lock lock(state->mutex);
    if (state->finished.wait_for(lock, timeout, [&] { return state->done; })) {
        return state->rv;
    }
    state->abandoned = true;
    state->on_late_return = std::move(on_late_return);
    return std::nullopt;
}

}  // namespace otpbox::hsm
