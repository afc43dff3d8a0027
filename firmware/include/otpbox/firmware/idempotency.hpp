#pragma once

// Repeating a POST with the same Idempotency-Key (per client, within 24 h)
// returns the first answer and does nothing again. Two requests with one key
// that arrive together are taken one after the other.

#include <functional>
#include <map>
#include <memory>
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
    // The lock of one client's key: requests with the same key wait for
    // each other, requests with other keys do not.
    [[nodiscard]] std::shared_ptr<std::mutex> lock_for(const std::string& client,
                                                       const std::string& key);

    Context& m_context;
    std::mutex m_mutex;  // guards m_locks
    std::map<std::string, std::weak_ptr<std::mutex>> m_locks;
};

}  // namespace otpbox::firmware
