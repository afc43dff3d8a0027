#pragma once

// What differs between the configuration otpboxd runs with and a new reading
// of the file. While serving, the daemon takes the TLS settings and the
// allow-list at once (docs/tls.md); every other setting is read only when it
// starts, so a change to one needs a restart, and the daemon says so.

#include <string>
#include <vector>

#include "otpbox/firmware/config.hpp"

namespace otpbox::firmware::detail {

// Whether the settings the TLS context is made of differ: [api] ca,
// certificate, key, key_label, crl, session_ticket_seconds, the allowed
// clients ([[api.clients]] and the entries of clients_file) and clients_file.
[[nodiscard]] bool tls_settings_differ(const Config& running, const Config& read);

// The keys, as the file names them ("sms.template", "api.port",
// "modems[0].baud", "modems" when modems were added or removed), whose
// setting differs and is taken only at a start. Values are never part of it,
// so a SIM PIN file's PIN shows only as "modems[0].sim_pin_file".
[[nodiscard]] std::vector<std::string> settings_needing_restart(const Config& running,
                                                                const Config& read);

}  // namespace otpbox::firmware::detail
