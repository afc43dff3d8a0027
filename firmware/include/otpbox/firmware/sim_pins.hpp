#pragma once

// SIM PINs set at the technician console, stored in the database sealed
// under the HSM's data key and bound to the modem's name: the database file
// alone does not give them away, and a PIN moved to another modem's row
// does not open. The daemon gives a stored PIN to a modem whose
// configuration names none, and restarts its modems when one changes.

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string_view>

#include "otpbox/firmware/clock.hpp"
#include "otpbox/firmware/database.hpp"
#include "otpbox/firmware/secrets.hpp"
#include "otpbox/hsm/secure_bytes.hpp"

namespace otpbox::firmware {

// A stored PIN that does not open: its row was changed, or sealed under
// another data key. The message names the modem, never the PIN.
class SimPinError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Stores the PIN of modem (its name in [[modems]]), replacing an earlier
// one, in one transaction. Throws std::invalid_argument unless modem is named
// and pin is 4 to 8 digits; DatabaseError or HsmError when storing fails.
void store_sim_pin(Database& database, Secrets& secrets, std::string_view modem,
                   std::string_view pin, TimePoint now);

// The stored PIN of modem, in a buffer that wipes itself; nullopt when none
// is stored. Throws SimPinError when the stored one does not open.
[[nodiscard]] std::optional<hsm::SecureBytes> load_sim_pin(Database& database, Secrets& secrets,
                                                           std::string_view modem);

// A number that changes with every store_sim_pin, from any connection to
// the database; 0 while none was ever stored.
[[nodiscard]] std::int64_t sim_pins_version(Database& database);

}  // namespace otpbox::firmware
