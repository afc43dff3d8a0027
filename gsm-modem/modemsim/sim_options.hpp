#pragma once

// The simulator's command line: where it appears, where it writes what it
// "sent" (and, when asked, when each AT+CMGS arrived), and the faults it
// injects (all off unless asked for).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace otpbox::modemsim {

struct ErrorRate {
    int code = 0;              // +CMS ERROR code, TS 27.005 3.2.5
    double probability = 0.0;  // per AT+CMGS
};

struct SimOptions {
    std::filesystem::path link;
    std::filesystem::path outbox;
    std::filesystem::path cmgs_arrivals;  // empty: not written
    std::chrono::milliseconds latency{0};
    std::chrono::milliseconds report_delay{1000};
    bool status_reports = true;
    std::uint8_t report_status = 0x00;  // TP-ST of every report, TS 23.040 9.2.3.15
    std::vector<ErrorRate> error_rates;
    double lost_ok_rate = 0.0;  // per accepted PDU: +CMGS: <mr> comes, its OK never does
    bool no_prompt = false;
    bool bare_prompt = false;
    bool echo = true;  // real modems power up echoing (ITU-T V.250 6.2.4)
    std::chrono::milliseconds noise{0};
    bool urc_during_send = false;
    bool no_registration = false;
    std::optional<std::string> sim_pin;
    std::chrono::milliseconds sim_busy{0};
    std::optional<unsigned> hangup_after;
    std::optional<std::uint64_t> seed;
};

// Parses argv; exits the process with CLI11's usage text on --help or a
// malformed command line.
[[nodiscard]] SimOptions parse_options(int argc, char** argv);

}  // namespace otpbox::modemsim
