// otpboxd: the appliance daemon. Parses its options, reads the
// configuration, and runs the daemon until SIGTERM.

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "otpbox/firmware/config.hpp"
#include "otpbox/firmware/daemon.hpp"
#include "otpbox/firmware/log_text.hpp"

namespace {

// Exit statuses (docs/architecture.md): 0 stopped cleanly, 1 fatal error or
// a stop that could not begin, 2 configuration error, 3 stopped while
// requests or the daemon's own work were stuck in the HSM. A fatal error
// wins over 3; the log then says both.
constexpr int kExitClean = 0;
constexpr int kExitFatal = 1;
constexpr int kExitConfig = 2;
constexpr int kExitStuckInHsm = 3;

int serve(otpbox::firmware::Config config) {
    otpbox::firmware::Daemon daemon(std::move(config));
    int status = kExitClean;
    try {
        daemon.run();
    } catch (const otpbox::firmware::FatalError& error) {
        spdlog::critical("event=fatal error=\"{}\"", otpbox::firmware::quotable(error.what()));
        status = kExitFatal;
    }
    if (daemon.hsm_call_in_flight()) {
        // A handler, or the daemon's own poll work, is still inside an HSM
        // call; destroying the daemon under it would not be safe. Flushed,
        // not shut down: such a thread may still log.
        spdlog::default_logger_raw()->flush();
        std::fflush(nullptr);
        std::_Exit(status == kExitClean ? kExitStuckInHsm : status);
    }
    return status;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"otpbox appliance daemon"};
    std::string config_file;
    app.add_option("--config", config_file, "configuration file (TOML)")->required();
    CLI11_PARSE(app, argc, argv);

    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
    try {
        auto config = otpbox::firmware::load_config(config_file);
        spdlog::set_level(spdlog::level::from_str(config.log_level));
        return serve(std::move(config));
    } catch (const otpbox::firmware::ConfigError& error) {
        spdlog::critical("event=config_error error=\"{}\"",
                         otpbox::firmware::quotable(error.what()));
        return kExitConfig;
    }
}
