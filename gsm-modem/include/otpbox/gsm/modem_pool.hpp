#pragma once

// The modems that send the queue's SMS: one worker thread each, taking one
// message at a time from the queue.

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "otpbox/gsm/modem.hpp"
#include "otpbox/gsm/sms_queue.hpp"

namespace otpbox::gsm {

class ModemPool {
  public:
    ModemPool(std::vector<ModemConfig> modems, SmsQueue& queue);
    ~ModemPool();  // stops the workers
    ModemPool(const ModemPool&) = delete;
    ModemPool& operator=(const ModemPool&) = delete;

    void start();
    void stop();

    [[nodiscard]] std::vector<ModemHealth> health();

  private:
    class Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace otpbox::gsm
