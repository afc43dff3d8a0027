#include "otpbox/firmware/audit_log.hpp"

#include <fstream>

#include "otpbox/hsm/key_labels.hpp"

namespace otpbox::firmware {

namespace {

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS audit (
    seq      INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    subject  TEXT NOT NULL,
    outcome  TEXT NOT NULL,
    mac      BLOB NOT NULL
);
)sql";

// Rows made before the audit key rotated have no version column: version 1.
constexpr std::string_view kAddKeyVersion =
    "ALTER TABLE audit ADD COLUMN key_version INTEGER NOT NULL DEFAULT 1";

void append_field(std::string& out, std::string_view field) {
    // Length-prefixed, so that no two different rows have the same input.
    out += std::to_string(field.size());
    out += ':';
    out += field;
}

constexpr std::int64_t kMaxKeyVersion = 255;

std::span<const std::uint8_t> as_bytes(const std::string& text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

}  // namespace

AuditLog::AuditLog(Database& database, Secrets& secrets)
    : m_database(database), m_secrets(secrets) {
    m_database.transaction([&] {
        m_database.execute(kSchema);
        auto column = m_database.prepare(
            "SELECT 1 FROM pragma_table_info('audit') WHERE name = 'key_version'");
        if (!column.step()) {
            m_database.execute(kAddKeyVersion);
        }
    });
}

std::vector<std::uint8_t> AuditLog::mac_of(unsigned key_version, std::int64_t sequence,
                                           std::int64_t at, const AuditEntry& entry,
                                           std::span<const std::uint8_t> previous) {
    // Rows of later key versions name their version in the MAC too.
    std::string input =
        key_version == 1 ? "otpbox-audit|" : "otpbox-audit-v" + std::to_string(key_version) + "|";
    append_field(input, std::to_string(sequence));
    append_field(input, std::to_string(at));
    append_field(input, entry.actor);
    append_field(input, entry.action);
    append_field(input, entry.subject);
    append_field(input, entry.outcome);
    append_field(input, to_hex(previous));
    return m_secrets.audit_mac(key_version, as_bytes(input));
}

void AuditLog::record(const AuditEntry& entry, TimePoint when) {
    std::int64_t sequence = 1;
    std::vector<std::uint8_t> previous;
    {
        auto last = m_database.prepare("SELECT seq, mac FROM audit ORDER BY seq DESC LIMIT 1");
        if (last.step()) {
            sequence = last.integer(0) + 1;
            previous = last.blob(1);
        }
    }
    const auto at = to_millis(when);
    const auto key_version = m_secrets.key_version(hsm::keys::kAuditMac);
    const auto mac = mac_of(key_version, sequence, at, entry, previous);
    m_database
        .prepare(
            "INSERT INTO audit (seq, at, actor, action, subject, outcome, mac, key_version) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        .bind(1, sequence)
        .bind(2, at)
        .bind(3, entry.actor)
        .bind(4, entry.action)
        .bind(5, entry.subject)
        .bind(6, entry.outcome)
        .bind_blob(7, mac)
        .bind(8, key_version)
        .run();
}

AuditAnchor AuditLog::latest() {
    return m_database.read([&] {
        AuditAnchor anchor;
        auto last = m_database.prepare("SELECT seq, mac FROM audit ORDER BY seq DESC LIMIT 1");
        if (last.step()) {
            anchor.sequence = last.integer(0);
            anchor.mac_hex = to_hex(last.blob(1));
        }
        return anchor;
    });
}

AuditVerdict AuditLog::verify(const std::optional<AuditAnchor>& anchor) {
    return m_database.read([&] {
        AuditVerdict verdict;
        auto rows = m_database.prepare(
            "SELECT seq, at, actor, action, subject, outcome, mac, key_version FROM audit "
            "ORDER BY seq");
        std::vector<std::uint8_t> previous;
        std::int64_t expected = 1;
        while (rows.step()) {
            const auto sequence = rows.integer(0);
            if (sequence != expected) {
                verdict.problem = "row " + std::to_string(expected) + " is missing";
                return verdict;
            }
            const AuditEntry entry{rows.text(2), rows.text(3), rows.text(4), rows.text(5)};
            const auto stored = rows.blob(6);
            const auto key_version = rows.integer(7);
            if (key_version < 1 || key_version > kMaxKeyVersion ||
                !m_secrets.hsm().has_key(hsm::keys::versioned(
                    hsm::keys::kAuditMac, static_cast<unsigned>(key_version))) ||
                mac_of(static_cast<unsigned>(key_version), sequence, rows.integer(1), entry,
                       previous) != stored) {
                verdict.problem = "row " + std::to_string(sequence) + " was changed";
                return verdict;
            }
            previous = stored;
            ++expected;
            ++verdict.rows;
        }
        if (anchor && anchor->sequence > verdict.rows) {
            verdict.problem = "rows after " + std::to_string(verdict.rows) +
                              " are missing (the anchor names row " +
                              std::to_string(anchor->sequence) + ")";
            return verdict;
        }
        if (anchor && anchor->sequence > 0) {
            auto row = m_database.prepare("SELECT mac FROM audit WHERE seq = ?");
            row.bind(1, anchor->sequence);
            if (!row.step() || to_hex(row.blob(0)) != anchor->mac_hex) {
                verdict.problem =
                    "row " + std::to_string(anchor->sequence) + " does not match the anchor";
                return verdict;
            }
        }
        verdict.intact = true;
        return verdict;
    });
}

std::optional<AuditAnchor> read_anchor(const std::filesystem::path& file) {
    std::ifstream in(file);
    AuditAnchor anchor;
    if (!(in >> anchor.sequence >> anchor.mac_hex)) {
        return std::nullopt;
    }
    return anchor;
}

void write_anchor(const std::filesystem::path& file, const AuditAnchor& anchor) {
    const auto temporary = file.string() + ".tmp";
    {
        std::ofstream out(temporary, std::ios::trunc);
        out << anchor.sequence << ' ' << anchor.mac_hex << '\n';
        out.flush();
        if (!out) {
            throw std::runtime_error("cannot write the audit anchor " + temporary);
        }
    }
    std::filesystem::rename(temporary, file);
}

}  // namespace otpbox::firmware
