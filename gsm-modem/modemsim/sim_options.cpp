#include "sim_options.hpp"

#include <CLI/CLI.hpp>
#include <cstdlib>

namespace otpbox::modemsim {
namespace {

// "304=0.5": a +CMS ERROR code and the probability of answering it.
[[nodiscard]] ErrorRate parse_error_rate(const std::string& text) {
    const auto equals = text.find('=');
    if (equals == std::string::npos) {
        throw CLI::ValidationError("--error-rate", "expected CODE=PROB, e.g. 500=0.25");
    }
    ErrorRate rate;
    try {
        rate.code = std::stoi(text.substr(0, equals));
        rate.probability = std::stod(text.substr(equals + 1));
    } catch (const std::exception&) {
        throw CLI::ValidationError("--error-rate", "expected CODE=PROB, e.g. 500=0.25");
    }
    if (rate.code < 0 || rate.code > 511 || rate.probability < 0.0 || rate.probability > 1.0) {
        throw CLI::ValidationError("--error-rate", "code 0-511, probability 0-1");
    }
    return rate;
}

}  // namespace

SimOptions parse_options(int argc, char** argv) {
    SimOptions options;
    CLI::App app{"otpbox-modemsim: a GSM modem on a pseudo-terminal, for tests and the demo"};
    int latency = 0;
    int report_delay = 1000;
    int noise = 0;
    int report_status = 0;
    int sim_busy = 0;
    unsigned hangup_after = 0;
    std::uint64_t seed = 0;
    std::vector<std::string> error_rates;
    bool no_echo = false;
    bool echo = false;

    app.add_option("--link", options.link, "symlink to create for the pty")->required();
    app.add_option("--outbox", options.outbox, "JSONL file of sent messages")->required();
    app.add_option("--cmgs-arrivals", options.cmgs_arrivals,
                   "file to append the CLOCK_MONOTONIC nanoseconds at which each accepted "
                   "AT+CMGS's first byte was read, one a line");
    app.add_option("--latency-ms", latency, "delay before the +CMGS answer")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--report-delay-ms", report_delay, "delay of the +CDS status report")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--report-status", report_status, "TP-ST of the reports (0 delivered)")
        ->check(CLI::Range(0, 255));
    app.add_flag("!--no-status-reports", options.status_reports, "never send +CDS");
    app.add_option("--error-rate", error_rates, "CODE=PROB: answer +CMS ERROR: CODE on CMGS");
    app.add_option("--lost-ok-rate", options.lost_ok_rate,
                   "PROB: answer an accepted PDU with +CMGS: <mr> but no OK after it")
        ->check(CLI::Range(0.0, 1.0));
    app.add_flag("--no-prompt", options.no_prompt, "never send the '> ' prompt");
    app.add_flag("--bare-prompt", options.bare_prompt, "send '>' without the space");
    app.add_flag("--echo", echo, "start with echo on (the default)");
    app.add_flag("--no-echo", no_echo, "start with echo off");
    app.add_option("--noise-ms", noise, "period of unsolicited lines")
        ->check(CLI::NonNegativeNumber);
    app.add_flag("--urc-during-send", options.urc_during_send,
                 "an unsolicited line before the +CMGS answer");
    app.add_flag("--no-registration", options.no_registration, "never register");
    app.add_option("--sim-pin", options.sim_pin, "SIM PIN required until given");
    app.add_option("--sim-busy-ms", sim_busy, "SIM busy after the PIN for that long")
        ->check(CLI::NonNegativeNumber);
    auto* hangup = app.add_option("--hangup-after", hangup_after, "close after N messages");
    auto* seeded = app.add_option("--seed", seed, "seed of the randomness");

    try {
        app.parse(argc, argv);
        for (const auto& rate : error_rates) {
            options.error_rates.push_back(parse_error_rate(rate));
        }
    } catch (const CLI::ParseError& error) {
        std::exit(app.exit(error));
    }

    options.latency = std::chrono::milliseconds(latency);
    options.report_delay = std::chrono::milliseconds(report_delay);
    options.noise = std::chrono::milliseconds(noise);
    options.report_status = static_cast<std::uint8_t>(report_status);
    options.sim_busy = std::chrono::milliseconds(sim_busy);
    options.echo = echo || !no_echo;
    if (hangup->count() > 0) {
        options.hangup_after = hangup_after;
    }
    if (seeded->count() > 0) {
        options.seed = seed;
    }
    return options;
}

}  // namespace otpbox::modemsim
