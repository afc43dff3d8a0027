#pragma once

// What every benchmark's main() does around its work.

#include <csignal>
#include <cstdio>
#include <exception>

namespace otpbox::bench {

// Runs bench with SIGPIPE ignored (a server closing first must be a failed
// read, not a signal); an exception ends it with status 1 and its reason.
inline int run_main(const char* name, int (*bench)()) {
    ::signal(SIGPIPE, SIG_IGN);
    try {
        return bench();
    } catch (const std::exception& error) {
        std::fprintf(stderr, "%s: %s\n", name, error.what());
        return 1;
    }
}

}  // namespace otpbox::bench
