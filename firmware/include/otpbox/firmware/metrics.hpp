#pragma once

// Counters for Prometheus. The daemon adds the gauges of its parts (queue,
// modems, HSM) when it is scraped.

#include <array>
#include <atomic>
#include <string>
#include <vector>

#include "otpbox/gsm/modem.hpp"

namespace otpbox::firmware {

class Metrics {
  public:
    void count_response(unsigned status);

    // The counters in Prometheus text format (version 0.0.4).
    [[nodiscard]] std::string render() const;

  private:
    // Index: status / 100 (1xx .. 5xx).
    std::array<std::atomic<std::uint64_t>, 6> m_responses{};
};

// One gauge or counter line, "name{labels} value".
void append_metric(std::string& out, const std::string& name, const std::string& help,
                   const std::string& type, const std::string& labels, double value);

// The modems' gauges and counters, one family after the other, each with
// its HELP and TYPE once and a line per modem: the text format wants the
// lines of a family together.
void append_modem_metrics(std::string& out, const std::vector<gsm::ModemHealth>& modems);

}  // namespace otpbox::firmware
