#pragma once

// Work handed to another thread, for a caller that must never wait longer
// than a deadline however long the work takes: an io thread signing a TLS
// handshake, say, which would otherwise wait as long as a stalled HSM.

#include <chrono>
#include <functional>

namespace otpbox::hsm {

// Runs work on one of a few kept threads and waits at most timeout for it.
// False when it overran: the work goes on on its thread, so it must own
// everything it uses.
[[nodiscard]] bool run_within(std::function<void()> work, std::chrono::milliseconds timeout);

}  // namespace otpbox::hsm
