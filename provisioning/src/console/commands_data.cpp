// backup, restore, audit verify, audit export.

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "console/console.hpp"
#include "file_io.hpp"

namespace otpbox::provisioning::console {

namespace {

namespace fs = std::filesystem;

struct SqliteClose {
    void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
using SqlitePtr = std::unique_ptr<sqlite3, SqliteClose>;

SqlitePtr open_sqlite(const fs::path& file, int flags) {
    sqlite3* db = nullptr;
    const int rc = sqlite3_open_v2(file.c_str(), &db, flags, nullptr);
    SqlitePtr owned(db);
    if (rc != SQLITE_OK) {
        throw std::runtime_error(file.string() + ": " + sqlite3_errstr(rc));
    }
    sqlite3_busy_timeout(db, 5000);
    return owned;
}

// Copies every page of from into to (SQLite's online backup, so the source
// may be in use meanwhile).
void copy_database(sqlite3* from, sqlite3* to) {
    sqlite3_backup* backup = sqlite3_backup_init(to, "main", from, "main");
    if (backup == nullptr) {
        throw std::runtime_error(std::string("backup: ") + sqlite3_errmsg(to));
    }
    int rc = SQLITE_OK;
    do {
        rc = sqlite3_backup_step(backup, -1);
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
            sqlite3_sleep(100);
        }
    } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
    sqlite3_backup_finish(backup);
    if (rc != SQLITE_DONE) {
        throw std::runtime_error(std::string("backup: ") + sqlite3_errstr(rc));
    }
}

// The rows of a one-column query, as text.
std::vector<std::string> column_of(sqlite3* db, const std::string& sql) {
    sqlite3_stmt* statement = nullptr;
    std::vector<std::string> values;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr) != SQLITE_OK) {
        return values;
    }
    while (sqlite3_step(statement) == SQLITE_ROW) {
        const auto* text = sqlite3_column_text(statement, 0);
        values.emplace_back(text ? reinterpret_cast<const char*>(text) : "");
    }
    sqlite3_finalize(statement);
    return values;
}

// Why the candidate lacks what the running appliance's tables have (every
// table, every column), or "" when it has all. The daemon keeps its
// connection across a restore and makes no table anew, so a missing one
// would fail every request that needs it.
std::string schema_problem(sqlite3* live, sqlite3* candidate) {
    const auto tables = column_of(
        live, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'");
    for (const auto& table : tables) {
        const auto query = "SELECT name FROM pragma_table_info('" + table + "')";
        const auto has = column_of(candidate, query);
        if (has.empty()) {
            return "not an otpbox database of this version (no table " + table + ")";
        }
        for (const auto& column : column_of(live, query)) {
            if (std::find(has.begin(), has.end(), column) == has.end()) {
                return "not an otpbox database of this version (table " + table + " has no " +
                       column + ")";
            }
        }
    }
    return {};
}

// Why file is not a backup of the otpbox database at live, or "" when it is one.
std::string backup_problem(const fs::path& file, const fs::path& live) {
    std::error_code unreadable;  // a path that cannot be looked at counts as missing
    const auto status = fs::status(file, unreadable);
    if (!fs::exists(status)) {
        return "no such file";
    }
    if (!fs::is_regular_file(status)) {
        return fs::is_directory(status) ? "a folder, not a file" : "not a regular file";
    }
    // Copied onto itself it would change nothing, yet say it restored.
    if (fs::equivalent(file, live, unreadable)) {
        return "the live database itself, not a backup";
    }
    try {
        const auto db = open_sqlite(file, SQLITE_OPEN_READONLY);
        sqlite3_stmt* statement = nullptr;
        if (sqlite3_prepare_v2(db.get(), "PRAGMA quick_check", -1, &statement, nullptr) !=
            SQLITE_OK) {
            return "not an SQLite database";
        }
        const bool ok =
            sqlite3_step(statement) == SQLITE_ROW &&
            std::string_view(reinterpret_cast<const char*>(sqlite3_column_text(statement, 0))) ==
                "ok";
        sqlite3_finalize(statement);
        if (!ok) {
            return "damaged (quick_check fails)";
        }
        return schema_problem(open_sqlite(live, SQLITE_OPEN_READONLY).get(), db.get());
    } catch (const std::exception& error) {
        return error.what();
    }
    return {};
}

// Why path cannot be a new file, or "" when it can.
std::string new_file_problem(const fs::path& path) {
    if (fs::exists(path)) {
        return path.string() + " exists already";
    }
    if (!fs::is_directory(path.parent_path())) {
        return "no folder " + path.parent_path().string();
    }
    return {};
}

}  // namespace

void Console::backup(std::span<const std::string> arguments) {
    if (arguments.size() != 1 || arguments[0].empty()) {
        say("Usage: backup PATH (a new file)\n");
        return;
    }
    const auto path = fs::absolute(arguments[0]);
    if (const auto problem = new_file_problem(path); !problem.empty()) {
        say(problem + "; nothing written.\n");
        return;
    }
    // Created 0600 before SQLite writes a byte: the database holds sealed
    // phone numbers and the audit log.
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, S_IRUSR | S_IWUSR);
    if (fd < 0) {
        say("Cannot create " + path.string() + "; nothing written.\n");
        return;
    }
    ::close(fd);
    try {
        const auto from = open_sqlite(m_appliance.config().database, SQLITE_OPEN_READONLY);
        const auto to = open_sqlite(path, SQLITE_OPEN_READWRITE);
        copy_database(from.get(), to.get());
        // The copy took the live file's WAL mode; a backup is one file, and
        // in WAL mode even a read-only look at it (restore's checks) would
        // leave -wal and -shm files beside it.
        if (sqlite3_exec(to.get(), "PRAGMA journal_mode=DELETE", nullptr, nullptr, nullptr) !=
            SQLITE_OK) {
            throw std::runtime_error(std::string("backup: ") + sqlite3_errmsg(to.get()));
        }
    } catch (const std::exception&) {
        fs::remove(path);
        throw;
    }
    say("Database copied to " + path.string() + " (" + std::to_string(fs::file_size(path) / 1024) +
        " KiB).\nThe HSM's keys are not in it: back the token up the vendor's way.\n");
    m_appliance.record("backup", path.filename().string(), "ok");
}

void Console::restore(std::span<const std::string> arguments) {
    if (arguments.size() != 1 || arguments[0].empty()) {
        say("Usage: restore PATH\n");
        return;
    }
    const auto path = fs::absolute(arguments[0]);
    if (const auto problem = backup_problem(path, m_appliance.config().database);
        !problem.empty()) {
        say(path.string() + ": " + problem + ";\nnothing changed.\n");
        m_appliance.record("restore", path.filename().string(), "refused");
        return;
    }
    say("This replaces every card, phone number, challenge and audit row with the\n"
        "backup's. Changes since the backup are lost: codes used since become\n"
        "usable again until they expire, and SMS limits and locks go back too.\n");
    if (!confirm("Restore " + path.filename().string() + "?")) {
        say("Nothing changed.\n");
        return;
    }
    {
        const auto from = open_sqlite(path, SQLITE_OPEN_READONLY);
        const auto to = open_sqlite(m_appliance.config().database, SQLITE_OPEN_READWRITE);
        copy_database(from.get(), to.get());
    }
    if (m_appliance.config().audit_anchor_file.empty()) {
        say("Restored. The event=audit_anchor lines otpboxd logged since the backup name\n"
            "rows the restored audit log does not have.\n");
    } else {
        say("Restored. The audit log's anchor outside the database is older or newer than\n"
            "the restored rows, so 'audit verify' reports that until the next anchor.\n");
    }
    m_appliance.record("restore", path.filename().string(), "ok");
}

void Console::audit_verify(std::span<const std::string>) {
    const auto& anchor_file = m_appliance.config().audit_anchor_file;
    std::optional<firmware::AuditAnchor> anchor;
    if (!anchor_file.empty()) {
        anchor = firmware::read_anchor(anchor_file);
    }
    const auto verdict = m_appliance.audit().verify(anchor);
    if (verdict.intact) {
        say("Audit log intact: " + std::to_string(verdict.rows) + " rows, every MAC checked" +
            (anchor ? ", the anchor (row " + std::to_string(anchor->sequence) + ") reached.\n"
                    : ".\nNo anchor file is configured: rows removed at the end would not\n"
                      "show here; compare with the event=audit_anchor lines otpboxd logs\n"
                      "(the system journal, or its log file).\n"));
        m_appliance.record("audit.verify", "", "intact");
        return;
    }
    say("AUDIT LOG BROKEN after " + std::to_string(verdict.rows) +
        " good rows: " + verdict.problem + "\n");
    m_appliance.record("audit.verify", "", "broken");
}

void Console::audit_export(std::span<const std::string> arguments) {
    if (arguments.size() != 1 || arguments[0].empty()) {
        say("Usage: audit export PATH (a new file)\n");
        return;
    }
    const auto path = fs::absolute(arguments[0]);
    if (const auto problem = new_file_problem(path); !problem.empty()) {
        say(problem + "; nothing written.\n");
        return;
    }
    auto& database = m_appliance.database();
    std::string lines;
    std::size_t rows = 0;
    database.read([&] {
        auto row = database.prepare(
            "SELECT seq, at, actor, action, subject, outcome, mac FROM audit ORDER BY seq");
        while (row.step()) {
            boost::json::object line{{"seq", row.integer(0)},
                                     {"at_ms", row.integer(1)},
                                     {"actor", row.text(2)},
                                     {"action", row.text(3)},
                                     {"subject", row.text(4)},
                                     {"outcome", row.text(5)},
                                     {"mac", firmware::to_hex(row.blob(6))}};
            lines += boost::json::serialize(line) + "\n";
            ++rows;
        }
    });
    detail::write_file_atomically(path, lines, S_IRUSR | S_IWUSR);
    say(std::to_string(rows) + " audit rows written to " + path.string() + ".\n");
    m_appliance.record("audit.export", path.filename().string(), "ok");
}

}  // namespace otpbox::provisioning::console
