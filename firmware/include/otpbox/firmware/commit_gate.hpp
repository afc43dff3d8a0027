#pragma once

// A request's work may be answered 503 at its deadline while it still runs
// (held up by a slow HSM, or by a database another such request holds). Its
// transactions must not commit after that: the client was told to try again.
// The API's worker sets a gate for its thread while it runs a request's
// handler, and the database asks it before every outermost COMMIT.

#include <stdexcept>

namespace otpbox::firmware {

class CommitGate {
  public:
    virtual ~CommitGate() = default;
    // False when the request has been answered already: the transaction
    // rolls back. True holds the answer at the deadline back until leave().
    [[nodiscard]] virtual bool enter() = 0;
    // After a COMMIT that succeeded the request can no longer be answered
    // 503 at its deadline: its own answer must go out.
    virtual void leave(bool committed) = 0;
};

// The gate of the calling thread; nullptr outside a request's handler.
[[nodiscard]] CommitGate* thread_commit_gate();
void set_thread_commit_gate(CommitGate* gate);

// Thrown by a transaction whose request was answered at its deadline; the
// transaction has been rolled back.
class RequestAnswered : public std::runtime_error {
  public:
    RequestAnswered()
        : std::runtime_error("the request was answered at its deadline; its work is undone") {}
};

}  // namespace otpbox::firmware
