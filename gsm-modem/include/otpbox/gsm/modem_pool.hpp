#pragma once

// The modems that send the queue's SMS: one worker thread each, taking one
// message at a time from the queue.

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "otpbox/gsm/sms_queue.hpp"

namespace otpbox::gsm {

struct ModemConfig {
    std::string name;              // "modem0", used in health and metrics
    std::filesystem::path device;  // serial device or the simulator's link
    unsigned baud = 115200;
    bool hardware_flow_control = false;
    std::optional<std::string> sim_pin;  // never logged
    std::chrono::milliseconds command_timeout{5000};
    std::chrono::milliseconds send_timeout{60000};  // from AT+CMGS to +CMGS
    std::chrono::seconds poll_interval{30};         // AT+CSQ and registration
    std::optional<std::chrono::minutes> validity = std::chrono::minutes(10);
};

struct ModemHealth {
    std::string name;
    std::string state;         // "ready", "initialising", "failed", "stopped", ...
    std::string registration;  // "home", "roaming", "searching", "denied", "unknown"
    int signal_rssi = 99;      // AT+CSQ's <rssi>, 99 = unknown
    std::size_t sent = 0;
    std::size_t failed = 0;
    std::string last_error;  // one line for an operator
};

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
