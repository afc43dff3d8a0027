#pragma once

// The daemon's modem pool, replaceable while the API serves. A modem takes
// its SIM PIN when it is initialised, so a new PIN means a new pool over the
// same queue. Readers (health, metrics) get the pool under a lock and keep
// it alive while they read it, whatever a restart does meanwhile.

#include <memory>
#include <mutex>
#include <vector>

#include "otpbox/gsm/modem_pool.hpp"
#include "otpbox/gsm/sms_queue.hpp"

namespace otpbox::firmware::detail {

class ModemSlot {
  public:
    explicit ModemSlot(gsm::SmsQueue& queue) : m_queue(queue) {}
    ~ModemSlot();
    ModemSlot(const ModemSlot&) = delete;
    ModemSlot& operator=(const ModemSlot&) = delete;

    // Stops the pool running now, then starts one with these modems. The old
    // workers close their serial ports before the new ones open them; a send
    // in progress is waited for (at most the send timeout). Not to be called
    // concurrently with itself or stop().
    void restart(std::vector<gsm::ModemConfig> modems);
    void stop();

    [[nodiscard]] std::vector<gsm::ModemHealth> health() const;

  private:
    [[nodiscard]] std::shared_ptr<gsm::ModemPool> pool() const;

    gsm::SmsQueue& m_queue;
    mutable std::mutex m_mutex;  // guards the pointer, not the pool
    std::shared_ptr<gsm::ModemPool> m_pool;
};

}  // namespace otpbox::firmware::detail
