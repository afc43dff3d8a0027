#include "otpbox/firmware/commit_gate.hpp"

namespace otpbox::firmware {

namespace {

thread_local CommitGate* t_gate = nullptr;

}  // namespace

CommitGate* thread_commit_gate() {
    return t_gate;
}

void set_thread_commit_gate(CommitGate* gate) {
    t_gate = gate;
}

}  // namespace otpbox::firmware
