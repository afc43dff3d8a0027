// otpbox-modemsim --link PATH --outbox FILE [fault options]
//
// A GSM modem on a pseudo-terminal: PATH becomes a symlink to the pty, every
// SMS it is given lands in the outbox as one JSON line. For tests and the
// development instance; see modem_session.hpp for what it answers.

#include <csignal>
#include <iostream>

#include "modem_session.hpp"
#include "otpbox/gsm/pseudo_terminal.hpp"
#include "outbox.hpp"
#include "sim_options.hpp"
#include "simulator.hpp"

namespace {

volatile std::sig_atomic_t g_stop = 0;

extern "C" void on_signal(int) {
    g_stop = 1;
}

// SIGTERM and SIGINT stay blocked except inside ppoll, so the flag is never
// missed between a check and a wait. Returns the mask ppoll waits with.
sigset_t install_signal_handlers() {
    struct sigaction action {};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, nullptr);
    sigaction(SIGINT, &action, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    sigset_t blocked;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGINT);
    sigset_t previous;
    sigprocmask(SIG_BLOCK, &blocked, &previous);
    sigdelset(&previous, SIGTERM);
    sigdelset(&previous, SIGINT);
    return previous;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace otpbox::modemsim;
    const SimOptions options = parse_options(argc, argv);
    try {
        const sigset_t wait_mask = install_signal_handlers();
        Outbox outbox(options.outbox);
        PseudoTerminal pty(options.link);
        ModemSession session(options, outbox);
        Simulator simulator(options, pty, session);
        std::cerr << "otpbox-modemsim: " << options.link.string() << " -> " << pty.slave_name()
                  << std::endl;
        simulator.run(g_stop, wait_mask);
        return 0;
    } catch (const std::exception& error) {
        std::cerr << "otpbox-modemsim: " << error.what() << std::endl;
        return 1;
    }
}
