#pragma once

// A PKCS#11 call with a deadline. A module call cannot be cancelled, so the
// call runs on one of a few kept runner threads; when it overruns, the caller goes on
// and the thread is left to finish, running on_late_return if it ever does.

#include <chrono>
#include <functional>
#include <optional>

#include <p11-kit/pkcs11.h>

namespace otpbox::hsm {

// The call's return value, or nullopt when it overran the timeout. A zero
// timeout runs the call on the caller's thread without a deadline.
[[nodiscard]] std::optional<CK_RV> call_with_deadline(std::function<CK_RV()> call,
                                                      std::chrono::milliseconds timeout,
                                                      std::function<void()> on_late_return);

}  // namespace otpbox::hsm
