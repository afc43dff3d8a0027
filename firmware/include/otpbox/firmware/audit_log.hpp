#pragma once

// The audit log: one row per issuance, block, unblock, revoke, phone change,
// deletion, OTP request, verify result, lock and console action. Each row
// has a sequence number and an HSM MAC over itself and the previous row's
// MAC, so that a changed, removed or reordered row breaks the chain.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "otpbox/firmware/clock.hpp"
#include "otpbox/firmware/database.hpp"
#include "otpbox/firmware/secrets.hpp"

namespace otpbox::firmware {

struct AuditEntry {
    std::string actor;    // client certificate subject, or "console:<user>"
    std::string action;   // "pincard.issue", "otp.request", "verify", ...
    std::string subject;  // pseudonymised user, or a card serial
    std::string outcome;  // "ok", "rejected", "locked", ...
};

struct AuditAnchor {
    std::int64_t sequence = 0;
    std::string mac_hex;
};

struct AuditVerdict {
    bool intact = false;
    std::int64_t rows = 0;
    std::string problem;  // the first thing found wrong, "" when intact
};

class AuditLog {
  public:
    AuditLog(Database& database, Secrets& secrets);

    // Appends a row; call inside the transaction of the change it records.
    void record(const AuditEntry& entry, TimePoint when);

    // The last row's sequence number and MAC.
    [[nodiscard]] AuditAnchor latest();

    // Checks the chain from the first row; with an anchor, also that the
    // log still reaches it (rows removed at the end are found).
    [[nodiscard]] AuditVerdict verify(const std::optional<AuditAnchor>& anchor = std::nullopt);

  private:
    [[nodiscard]] std::vector<std::uint8_t> mac_of(unsigned key_version, std::int64_t sequence,
                                                   std::int64_t at, const AuditEntry& entry,
                                                   std::span<const std::uint8_t> previous);

    Database& m_database;
    Secrets& m_secrets;
};

// Reads and writes the anchor file ("<sequence> <mac hex>\n").
[[nodiscard]] std::optional<AuditAnchor> read_anchor(const std::filesystem::path& file);
void write_anchor(const std::filesystem::path& file, const AuditAnchor& anchor);

}  // namespace otpbox::firmware
