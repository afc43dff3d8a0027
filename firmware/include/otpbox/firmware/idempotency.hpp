#pragma once

// Repeating a POST with the same Idempotency-Key (per client, within 24 h)
// returns the first answer and does nothing again. The work and its kept
// answer are one transaction, so two requests with one key that arrive
// together are taken one after the other, and a crash keeps both or neither.

#include <functional>

#include "otpbox/firmware/api/server.hpp"
#include "otpbox/firmware/context.hpp"

namespace otpbox::firmware {

class Idempotency {
  public:
    explicit Idempotency(Context& context) : m_context(context) {}

    // Runs handle once per (client, key) in the database transaction that
    // keeps its answer; replays the kept answer after.
    api::Response run(const api::Request& request, const std::function<api::Response()>& handle);

  private:
    Context& m_context;
};

}  // namespace otpbox::firmware
