// backup, restore, audit verify, audit export.

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "console/console.hpp"
#include "file_io.hpp"
#include "otpbox/gsm/sms_queue.hpp"

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

// Every object of a database's schema ("table users", "index pincards_user",
// "trigger ...") with its SQL ("" for SQLite's own automatic indexes).
std::map<std::string, std::string> schema_of(sqlite3* db) {
    std::map<std::string, std::string> objects;
    sqlite3_stmt* statement = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT type || ' ' || name, coalesce(sql, '') FROM sqlite_master",
                           -1, &statement, nullptr) != SQLITE_OK) {
        throw std::runtime_error(std::string("schema: ") + sqlite3_errmsg(db));
    }
    while (sqlite3_step(statement) == SQLITE_ROW) {
        objects.emplace(reinterpret_cast<const char*>(sqlite3_column_text(statement, 0)),
                        reinterpret_cast<const char*>(sqlite3_column_text(statement, 1)));
    }
    sqlite3_finalize(statement);
    return objects;
}

// A folder of its own for a moment's work, removed with what is in it.
class ScratchFolder {
  public:
    ScratchFolder() {
        auto pattern = (fs::temp_directory_path() / "otpbox-console-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw std::runtime_error("cannot make a scratch folder in " +
                                     fs::temp_directory_path().string());
        }
        m_path = pattern;
    }
    ~ScratchFolder() {
        std::error_code ignored;
        fs::remove_all(m_path, ignored);
    }
    ScratchFolder(const ScratchFolder&) = delete;
    ScratchFolder& operator=(const ScratchFolder&) = delete;

    [[nodiscard]] const fs::path& path() const { return m_path; }

  private:
    fs::path m_path;
};

// The schema this version of otpbox makes in a new database: the same
// parts make it as in the daemon (its tables, the audit log's, the SMS
// queue's).
std::map<std::string, std::string> fresh_schema(Appliance& appliance) {
    const ScratchFolder scratch;
    const auto file = scratch.path() / "fresh.db";
    {
        firmware::Database database(file);
        const firmware::AuditLog audit(database, appliance.secrets());
        const gsm::SmsQueue queue(file, appliance.secrets().sms_sealer(), {},
                                  gsm::Recovery::leave_to_sender);
    }
    return schema_of(open_sqlite(file, SQLITE_OPEN_READONLY).get());
}

// Why the candidate's schema is not the appliance's, or "" when it is. The
// candidate must have every table and column the running appliance has
// (the daemon keeps its connection across a restore and makes no table
// anew, so a missing one would fail every request that needs it), and
// nothing a new database of this version lacks: a trigger or a view runs
// inside the daemon's own statements (one resetting a lock, one dropping
// audit rows), and another table's or index's SQL may do the same through
// a default or a constraint. The live database's SQL for an object counts
// too, as a database made by an earlier version and brought up to date
// keeps the SQL of its changes.
std::string schema_problem(sqlite3* live, sqlite3* candidate,
                           const std::map<std::string, std::string>& fresh) {
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
    const auto live_schema = schema_of(live);
    for (const auto& [object, sql] : schema_of(candidate)) {
        const auto made = fresh.find(object);
        if (made == fresh.end()) {
            return "holds " + object + ", which otpbox never makes";
        }
        const auto kept = live_schema.find(object);
        if (sql != made->second && (kept == live_schema.end() || sql != kept->second)) {
            return "its " + object + " is not defined as otpbox defines it";
        }
    }
    return {};
}

// Every row of the candidate's audit log checked with the HSM's audit keys,
// as 'audit verify' checks the live one: a backup whose log was changed is
// not taken in.
std::string audit_problem(sqlite3* candidate, firmware::Secrets& secrets) {
    sqlite3_stmt* statement = nullptr;
    if (sqlite3_prepare_v2(candidate,
                           "SELECT seq, at, actor, action, subject, outcome, mac, key_version "
                           "FROM audit ORDER BY seq",
                           -1, &statement, nullptr) != SQLITE_OK) {
        return std::string("its audit log cannot be read: ") + sqlite3_errmsg(candidate);
    }
    const auto text = [&](int column) {
        const auto* value = sqlite3_column_text(statement, column);
        return value ? std::string(reinterpret_cast<const char*>(value)) : std::string();
    };
    firmware::AuditChainCheck check(secrets);
    while (sqlite3_step(statement) == SQLITE_ROW) {
        const auto* mac = static_cast<const std::uint8_t*>(sqlite3_column_blob(statement, 6));
        const auto size = static_cast<std::size_t>(sqlite3_column_bytes(statement, 6));
        const firmware::AuditEntry entry{text(2), text(3), text(4), text(5)};
        if (!check.add(sqlite3_column_int64(statement, 0), sqlite3_column_int64(statement, 1),
                       entry, std::span<const std::uint8_t>(mac, mac ? size : 0),
                       sqlite3_column_int64(statement, 7))) {
            break;
        }
    }
    sqlite3_finalize(statement);
    const auto verdict = check.verdict();
    if (!verdict.intact) {
        return "its audit log does not verify with this HSM's audit keys (after " +
               std::to_string(verdict.rows) + " good rows: " + verdict.problem + ")";
    }
    return {};
}

// Why file is not a backup of the otpbox database at live, or "" when it is one.
std::string backup_problem(const fs::path& file, const fs::path& live, Appliance& appliance) {
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
        if (auto problem = schema_problem(open_sqlite(live, SQLITE_OPEN_READONLY).get(), db.get(),
                                          fresh_schema(appliance));
            !problem.empty()) {
            return problem;
        }
        return audit_problem(db.get(), appliance.secrets());
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
    if (const auto problem = backup_problem(path, m_appliance.config().database, m_appliance);
        !problem.empty()) {
        say(path.string() + ": " + problem + ";\nnothing changed.\n");
        m_appliance.record("restore", path.filename().string(), "refused");
        return;
    }
    say("This replaces every card, phone number, challenge and audit row with the\n"
        "backup's. Changes since the backup are lost: codes used since become\n"
        "usable again until they expire, and SMS limits and locks go back too.\n"
        "SMS the backup holds as queued fail: they may have been sent since.\n");
    if (!confirm("Restore " + path.filename().string() + "?")) {
        say("Nothing changed.\n");
        return;
    }
    {
        // The backup's unsent SMS may have gone out after it was taken, and
        // their +CMGS is no longer recorded: they fail in a copy first, so
        // that the daemon never sees them queued. Those that never went out
        // fail too: nothing tells them apart.
        const auto from = open_sqlite(path, SQLITE_OPEN_READONLY);
        const auto staged = open_sqlite(":memory:", SQLITE_OPEN_READWRITE);
        copy_database(from.get(), staged.get());
        gsm::SmsQueue::fail_unsent(staged.get(), std::chrono::system_clock::now(),
                                   "restored from a backup: it may have been sent after the "
                                   "backup was taken, so it is not sent again");
        const auto to = open_sqlite(m_appliance.config().database, SQLITE_OPEN_READWRITE);
        copy_database(staged.get(), to.get());
    }
    m_appliance.record("restore", path.filename().string(), "ok");
    // The backup's log was checked before it was copied, so the anchor may
    // name the restored log's last row (this restore's own row).
    const auto& anchor_file = m_appliance.config().audit_anchor_file;
    // Known shortcoming: without an anchor file the daemon's last anchor
    // is only in its memory, which the console cannot reach.
    if (anchor_file.empty()) {
        say("Restored. The event=audit_anchor lines otpboxd logged since the backup name\n"
            "rows the restored audit log may not have. A running otpboxd that logged an\n"
            "anchor after the backup was taken reports the audit log broken (health,\n"
            "status) until it is restarted; restart otpboxd (under scripts/dev-up:\n"
            "scripts/dev-down, then scripts/dev-up).\n");
        return;
    }
    const auto anchor = m_appliance.audit().latest();
    firmware::write_anchor(anchor_file, anchor);
    const auto row = std::to_string(anchor.sequence);
    say("Restored. The audit anchor " + anchor_file.string() + " now names the restored log's\n" +
        "last row (" + row + ").\n");
}

void Console::audit_verify(std::span<const std::string>) {
    const auto& anchor_file = m_appliance.config().audit_anchor_file;
    std::optional<firmware::AuditAnchor> anchor;
    std::string anchor_trouble;  // why a configured anchor file cannot be used
    if (!anchor_file.empty()) {
        const auto found = firmware::load_anchor_file(anchor_file);
        if (found.state == firmware::AnchorFile::State::missing) {
            anchor_trouble = "the configured anchor file " + anchor_file.string() + " is missing";
        } else if (found.state == firmware::AnchorFile::State::unreadable) {
            anchor_trouble = "the configured anchor file " + anchor_file.string() +
                             " is unreadable (" + found.problem + ")";
        } else {
            anchor = found.anchor;
        }
    }
    const auto verdict = m_appliance.audit().verify(anchor);
    if (!verdict.intact) {
        say("AUDIT LOG BROKEN after " + std::to_string(verdict.rows) +
            " good rows: " + verdict.problem + "\n");
        m_appliance.record("audit.verify", "", "broken");
        return;
    }
    if (!anchor_trouble.empty()) {
        say("Audit log NOT VERIFIED against its anchor: " + anchor_trouble + ".\n" +
            std::to_string(verdict.rows) +
            " rows chain and every MAC checked, but rows removed at the end would\n"
            "not show; compare with the event=audit_anchor lines otpboxd logs.\n");
        m_appliance.record("audit.verify", "", "anchor_unusable");
        return;
    }
    say("Audit log intact: " + std::to_string(verdict.rows) + " rows, every MAC checked" +
        (anchor ? ", the anchor (row " + std::to_string(anchor->sequence) + ") reached.\n"
                : ".\nNo anchor file is configured: rows removed at the end would not\n"
                  "show here; compare with the event=audit_anchor lines otpboxd logs\n"
                  "(the system journal, or its log file).\n"));
    m_appliance.record("audit.verify", "", "intact");
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
