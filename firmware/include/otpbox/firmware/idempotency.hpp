#pragma once

// Repeating a POST with the same Idempotency-Key (per client, within 24 h)
// returns the first answer and does nothing again. Two requests with one key
// that arrive together are taken one after the other.

#include <functional>
#include <mutex>
#include <string>

#include "otpbox/firmware/api/server.hpp"
#include "otpbox/firmware/context.hpp"

namespace otpbox::firmware {

class Idempotency {
  public:
    explicit Idempotency(Context& context) : m_context(context) {}

    // Runs handle once per (client, key); replays the stored answer after.
    api::Response run(const api::Request& request, const std::function<api::Response()>& handle);

  private:
    Context& m_context;
    std::mutex m_mutex;
};

}  // namespace otpbox::firmware
