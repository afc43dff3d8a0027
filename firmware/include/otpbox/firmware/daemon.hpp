#pragma once

// otpboxd: opens what the configuration names, and serves the API once the
// appliance is provisioned. Until then it serves nothing and says, in its
// log, what is missing; it looks again every few seconds, so a provisioning
// step that completes the set starts the API without a restart. Serving, it
// looks the same way for what the technician console changes: TLS files and
// allowed clients (for new connections) and stored SIM PINs (its modems
// start again with them).

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "otpbox/firmware/clock.hpp"
#include "otpbox/firmware/config.hpp"

namespace otpbox::firmware {

// A problem no waiting can fix (wrong PIN, PIN file others can read, missing
// module): the daemon stops with this one line.
class FatalError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class Daemon {
  public:
    explicit Daemon(Config config, std::shared_ptr<const Clock> clock = nullptr);
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Serves until SIGINT or SIGTERM. Throws FatalError, also when it ends
    // with an HSM call in flight: look at hsm_call_in_flight() before the
    // Daemon goes.
    void run();

    // Requests abandoned at their deadline (a stalled HSM) whose handlers had
    // not returned when run() ended, or one of the daemon's own poll tasks
    // (key versions, stored SIM PINs, the TLS key on a reload, the look for
    // a lost token) still inside an HSM call then. The Daemon must not be
    // destroyed (its services, or the module under the call): the process
    // should end with std::_Exit.
    [[nodiscard]] bool hsm_call_in_flight() const;

  private:
    class Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace otpbox::firmware
