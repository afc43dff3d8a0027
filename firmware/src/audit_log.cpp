#include "otpbox/firmware/audit_log.hpp"

#include <fstream>

#include "atomic_file.hpp"
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

std::vector<std::uint8_t> audit_row_mac(Secrets& secrets, unsigned key_version,
                                        std::int64_t sequence, std::int64_t at,
                                        const AuditEntry& entry,
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
    return secrets.audit_mac(key_version, as_bytes(input));
}

bool AuditChainCheck::add(std::int64_t sequence, std::int64_t at, const AuditEntry& entry,
                          std::span<const std::uint8_t> mac, std::int64_t key_version) {
    if (!m_problem.empty()) {
        return false;
    }
    if (sequence != m_rows + 1) {
        m_problem = "row " + std::to_string(m_rows + 1) + " is missing";
        return false;
    }
    const std::vector<std::uint8_t> stored(mac.begin(), mac.end());
    if (key_version < 1 || key_version > kMaxKeyVersion ||
        !m_secrets.hsm().has_key(
            hsm::keys::versioned(hsm::keys::kAuditMac, static_cast<unsigned>(key_version))) ||
        audit_row_mac(m_secrets, static_cast<unsigned>(key_version), sequence, at, entry,
                      m_previous) != stored) {
        m_problem = "row " + std::to_string(sequence) + " was changed";
        return false;
    }
    m_previous = stored;
    ++m_rows;
    return true;
}

AuditVerdict AuditChainCheck::verdict() const {
    return AuditVerdict{m_problem.empty(), m_rows, m_problem};
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
    const auto mac = audit_row_mac(m_secrets, key_version, sequence, at, entry, previous);
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
        AuditChainCheck check(m_secrets);
        auto rows = m_database.prepare(
            "SELECT seq, at, actor, action, subject, outcome, mac, key_version FROM audit "
            "ORDER BY seq");
        while (rows.step()) {
            const AuditEntry entry{rows.text(2), rows.text(3), rows.text(4), rows.text(5)};
            if (!check.add(rows.integer(0), rows.integer(1), entry, rows.blob(6),
                           rows.integer(7))) {
                return check.verdict();
            }
        }
        auto verdict = check.verdict();
        if (anchor && anchor->sequence > verdict.rows) {
            verdict.intact = false;
            verdict.problem = "rows after " + std::to_string(verdict.rows) +
                              " are missing (the anchor names row " +
                              std::to_string(anchor->sequence) + ")";
            return verdict;
        }
        if (anchor && anchor->sequence > 0) {
            auto row = m_database.prepare("SELECT mac FROM audit WHERE seq = ?");
            row.bind(1, anchor->sequence);
            if (!row.step() || to_hex(row.blob(0)) != anchor->mac_hex) {
                verdict.intact = false;
                verdict.problem =
                    "row " + std::to_string(anchor->sequence) + " does not match the anchor";
                return verdict;
            }
        }
        return verdict;
    });
}

std::string AuditLog::follows_from(const AuditAnchor& earlier, const AuditAnchor& now) {
    if (earlier.sequence <= 0) {
        return {};
    }
    if (now.sequence < earlier.sequence) {
        return "rows after " + std::to_string(now.sequence) +
               " are missing (the anchor names row " + std::to_string(earlier.sequence) + ")";
    }
    return m_database.read([&]() -> std::string {
        auto row = m_database.prepare("SELECT mac FROM audit WHERE seq = ?");
        row.bind(1, earlier.sequence);
        if (!row.step() || to_hex(row.blob(0)) != earlier.mac_hex) {
            return "row " + std::to_string(earlier.sequence) + " does not match the anchor";
        }
        // seq is the primary key: as many rows as numbers means none is missing.
        auto count = m_database.prepare("SELECT count(*) FROM audit WHERE seq > ? AND seq <= ?");
        count.bind(1, earlier.sequence).bind(2, now.sequence);
        if (!count.step() || count.integer(0) != now.sequence - earlier.sequence) {
            return "rows between " + std::to_string(earlier.sequence) + " and " +
                   std::to_string(now.sequence) + " are missing";
        }
        return {};
    });
}

AnchorFile load_anchor_file(const std::filesystem::path& file) {
    AnchorFile found;
    std::error_code error;
    const auto status = std::filesystem::status(file, error);
    if (status.type() == std::filesystem::file_type::not_found) {
        return found;
    }
    found.state = AnchorFile::State::unreadable;
    if (error) {
        found.problem = error.message();
        return found;
    }
    if (!std::filesystem::is_regular_file(status)) {
        found.problem = "not a regular file";
        return found;
    }
    std::ifstream in(file);
    if (!in) {
        found.problem = "cannot be opened";
        return found;
    }
    // An empty log's anchor is "0" and no MAC.
    std::string rest;
    const bool parsed =
        static_cast<bool>(in >> found.anchor.sequence) &&
        (static_cast<bool>(in >> found.anchor.mac_hex) || (found.anchor.sequence == 0 && in.eof()));
    in.clear();
    in >> rest;
    const bool hex =
        found.anchor.mac_hex.find_first_not_of("0123456789abcdef") == std::string::npos &&
        found.anchor.mac_hex.empty() == (found.anchor.sequence == 0);
    if (!parsed || !rest.empty() || found.anchor.sequence < 0 || !hex) {
        found.problem = "not \"<sequence> <mac hex>\"";
        found.anchor = {};
        return found;
    }
    found.state = AnchorFile::State::ok;
    return found;
}

std::optional<AuditAnchor> read_anchor(const std::filesystem::path& file) {
    auto found = load_anchor_file(file);
    if (found.state != AnchorFile::State::ok) {
        return std::nullopt;
    }
    return found.anchor;
}

// Synced and renamed into place: the daemon and the console (after a
// restore) may write it at the same moment, and after a crash the old or
// the new anchor is there, never a part of one.
void write_anchor(const std::filesystem::path& file, const AuditAnchor& anchor) {
    detail::write_file_atomically(
        file, std::to_string(anchor.sequence) + ' ' + anchor.mac_hex + '\n', 0644);
}

}  // namespace otpbox::firmware
