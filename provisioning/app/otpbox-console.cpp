// otpbox-console: the technician console on a serial line (docs/console.md).

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <atomic>
#include <cstdlib>
#include <iostream>

#include "console/appliance.hpp"
#include "console/console.hpp"
#include "console/run_lock.hpp"
#include "console/serial_line.hpp"
#include "console/terminal.hpp"

namespace {

namespace fs = std::filesystem;
namespace con = otpbox::provisioning::console;

std::atomic<bool> g_stop{false};

extern "C" void on_signal(int) {
    g_stop.store(true);
}

void handle_signals() {
    struct sigaction action {};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"otpbox-console: the technician console on a serial line"};
    fs::path config_file;
    fs::path device;
    fs::path pty_link;
    unsigned baud = 115200;
    app.add_option("--config", config_file, "otpbox.toml")->required();
    auto* device_option = app.add_option("--device", device, "the serial device, 8N1");
    app.add_option("--baud", baud, "the serial line's speed")->capture_default_str();
    app.add_option("--pty-link", pty_link,
                   "make a pseudo-terminal and link its other end here (development)")
        ->excludes(device_option);
    CLI11_PARSE(app, argc, argv);
    if (device.empty() && pty_link.empty()) {
        std::cerr << "otpbox-console: give --device or --pty-link\n";
        return 2;
    }
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S%z %l %v");
    handle_signals();
    try {
        // Held until the console ends: a second one says so and exits.
        const con::RunLock lock(fs::absolute(config_file));
        con::Appliance appliance(fs::absolute(config_file));
        auto line = device.empty() ? con::SerialLine::open_pty(fs::absolute(pty_link))
                                   : con::SerialLine::open_device(device, baud);
        con::Terminal terminal(*line, g_stop);
        con::Console console(appliance, terminal, g_stop);
        spdlog::info("event=console_started line={}",
                     device.empty() ? pty_link.string() : device.string());
        console.run();
        spdlog::info("event=console_stopped");
    } catch (const con::AnotherConsole& error) {
        std::cerr << "otpbox-console: " << error.what() << "\n";
        return 3;
    } catch (const std::exception& error) {
        std::cerr << "otpbox-console: " << error.what() << "\n";
        return 1;
    }
    return 0;
}
