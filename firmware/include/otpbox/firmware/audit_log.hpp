#pragma once

// The audit log: one row per issuance, block, unblock, revoke, phone change,
// deletion, OTP request, verify result, lock and console action. Each row
// has a sequence number and an HSM MAC over itself and the previous row's
// MAC, so that a changed, removed or reordered row breaks the chain.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
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

// Checks audit rows one at a time in sequence order from the first: each
// MAC against the HSM's audit key of its version and the row before. The
// log's own verify uses it, and so does the console for a backup's log
// before it restores it.
class AuditChainCheck {
  public:
    explicit AuditChainCheck(Secrets& secrets) : m_secrets(secrets) {}

    // False once a row failed; verdict() then says which.
    bool add(std::int64_t sequence, std::int64_t at, const AuditEntry& entry,
             std::span<const std::uint8_t> mac, std::int64_t key_version);
    [[nodiscard]] AuditVerdict verdict() const;

  private:
    Secrets& m_secrets;
    std::vector<std::uint8_t> m_previous;
    std::int64_t m_rows = 0;
    std::string m_problem;
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

    // Whether the log still follows on from an anchor taken earlier: the row
    // it names is there with the MAC it names, and no row is missing between
    // it and now's last row. "" when it does, else what is wrong. Reads
    // only, no HSM call: cheap enough for every anchor the daemon writes.
    [[nodiscard]] std::string follows_from(const AuditAnchor& earlier, const AuditAnchor& now);

  private:
    Database& m_database;
    Secrets& m_secrets;
};

// The MAC of one audit row, chained to the MAC of the row before.
[[nodiscard]] std::vector<std::uint8_t> audit_row_mac(Secrets& secrets, unsigned key_version,
                                                      std::int64_t sequence, std::int64_t at,
                                                      const AuditEntry& entry,
                                                      std::span<const std::uint8_t> previous);

// An anchor file as found: not there, there but not an anchor (garbled,
// unreadable), or an anchor.
struct AnchorFile {
    enum class State { missing, unreadable, ok };
    State state = State::missing;
    AuditAnchor anchor;   // when ok
    std::string problem;  // when unreadable, why
};

// Reads and writes the anchor file ("<sequence> <mac hex>\n").
[[nodiscard]] AnchorFile load_anchor_file(const std::filesystem::path& file);
[[nodiscard]] std::optional<AuditAnchor> read_anchor(const std::filesystem::path& file);
void write_anchor(const std::filesystem::path& file, const AuditAnchor& anchor);

}  // namespace otpbox::firmware
