#include "otpbox/firmware/database.hpp"

#include "group_sync.hpp"
#include "otpbox/firmware/commit_gate.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <system_error>

namespace otpbox::firmware {

namespace {

[[noreturn]] void fail(sqlite3* db, std::string_view what) {
    throw DatabaseError(std::string(what) + ": " + (db ? sqlite3_errmsg(db) : "out of memory"),
                        db ? sqlite3_errcode(db) & 0xff : SQLITE_NOMEM);
}

// SQLite's default for automatic checkpoints (PRAGMA wal_autocheckpoint),
// which the WAL hook below takes over.
constexpr int kCheckpointPages = 1000;

// Kept statements: how many different SQL texts, and how many statements
// of one text (a statement in use while the same SQL is prepared again).
constexpr std::size_t kKeptTexts = 128;
constexpr std::size_t kKeptPerText = 4;

// Result codes that say the file cannot take writes now, whatever was written.
bool is_storage_fault(int code) {
    switch (code) {
        case SQLITE_IOERR:
        case SQLITE_FULL:
        case SQLITE_READONLY:
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
        case SQLITE_CANTOPEN:
        case SQLITE_PERM:
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
            return true;
        default:
            return false;
    }
}

// Tables of the firmware. The SMS queue keeps its own tables (sms_*) in the
// same file. Times are Unix milliseconds, UTC.
constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS users (
    id            TEXT PRIMARY KEY,
    phone_sealed  BLOB,
    phone_index   TEXT,
    phone_masked  TEXT,
    sms_day       TEXT,
    wrong_streak  INTEGER NOT NULL DEFAULT 0,
    lock_until    INTEGER NOT NULL DEFAULT 0,
    lock_count    INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS users_phone_index ON users(phone_index);

CREATE TABLE IF NOT EXISTS pincards (
    serial        TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    state         TEXT NOT NULL,
    state_before_block TEXT,
    block_reason  TEXT,
    key_version   INTEGER NOT NULL,
    columns       INTEGER NOT NULL,
    rows          INTEGER NOT NULL,
    cell_length   INTEGER NOT NULL,
    alphabet      TEXT NOT NULL,
    issued_at     INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS pincards_user ON pincards(user_id);

CREATE TABLE IF NOT EXISTS cell_sets (
    user_id       TEXT PRIMARY KEY,
    cells         TEXT NOT NULL,
    expires_at    INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS challenges (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    method        TEXT NOT NULL,
    cells         TEXT,
    code_mac      BLOB,
    sms_id        TEXT,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    state         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS challenges_user ON challenges(user_id);

CREATE TABLE IF NOT EXISTS sms_log (
    user_id       TEXT NOT NULL,
    at            INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sms_log_user ON sms_log(user_id, at);

CREATE TABLE IF NOT EXISTS idempotency (
    client        TEXT NOT NULL,
    key           TEXT NOT NULL,
    method        TEXT NOT NULL,
    target        TEXT NOT NULL,
    status        INTEGER NOT NULL,
    body          TEXT NOT NULL,
    headers       TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    fingerprint   TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (client, key)
);

CREATE TABLE IF NOT EXISTS sim_pins (
    modem         TEXT PRIMARY KEY,
    sealed        BLOB NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- One row, counted up by every SIM PIN stored: the daemon polls it.
CREATE TABLE IF NOT EXISTS sim_pins_version (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    version       INTEGER NOT NULL
);
-- Written only by the health check, to see whether writes work again.
CREATE TABLE IF NOT EXISTS health_probe (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL
);
)sql";

}  // namespace

Statement::Statement(sqlite3* db, std::string_view sql) : m_db(db) {
    if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &m_stmt, nullptr) !=
        SQLITE_OK) {
        fail(db, "prepare");
    }
}

Statement::~Statement() {
    if (m_stmt == nullptr) {
        return;
    }
    if (m_home != nullptr) {
        m_home->take_back(m_stmt, *m_sql);
    } else {
        sqlite3_finalize(m_stmt);
    }
}

Statement::Statement(Statement&& other) noexcept
    : m_db(other.m_db), m_stmt(other.m_stmt), m_home(other.m_home), m_sql(other.m_sql) {
    other.m_stmt = nullptr;
}

Statement& Statement::bind(int index, std::int64_t value) {
    if (sqlite3_bind_int64(m_stmt, index, value) != SQLITE_OK) {
        fail(m_db, "bind");
    }
    return *this;
}

Statement& Statement::bind(int index, std::string_view value) {
    if (sqlite3_bind_text(m_stmt, index, value.data(), static_cast<int>(value.size()),
                          SQLITE_TRANSIENT) != SQLITE_OK) {
        fail(m_db, "bind");
    }
    return *this;
}

Statement& Statement::bind_blob(int index, std::span<const std::uint8_t> value) {
    if (sqlite3_bind_blob(m_stmt, index, value.data(), static_cast<int>(value.size()),
                          SQLITE_TRANSIENT) != SQLITE_OK) {
        fail(m_db, "bind");
    }
    return *this;
}

Statement& Statement::bind_null(int index) {
    if (sqlite3_bind_null(m_stmt, index) != SQLITE_OK) {
        fail(m_db, "bind");
    }
    return *this;
}

bool Statement::step() {
    const int rc = sqlite3_step(m_stmt);
    if (rc == SQLITE_ROW) {
        return true;
    }
    if (rc == SQLITE_DONE) {
        return false;
    }
    fail(m_db, "step");
}

void Statement::run() {
    while (step()) {
    }
}

std::int64_t Statement::integer(int column) const {
    return sqlite3_column_int64(m_stmt, column);
}

std::string Statement::text(int column) const {
    const auto* data = sqlite3_column_text(m_stmt, column);
    if (data == nullptr) {
        return {};
    }
    return {reinterpret_cast<const char*>(data),
            static_cast<std::size_t>(sqlite3_column_bytes(m_stmt, column))};
}

std::vector<std::uint8_t> Statement::blob(int column) const {
    const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(m_stmt, column));
    const auto size = static_cast<std::size_t>(sqlite3_column_bytes(m_stmt, column));
    return data ? std::vector<std::uint8_t>(data, data + size) : std::vector<std::uint8_t>{};
}

bool Statement::is_null(int column) const {
    return sqlite3_column_type(m_stmt, column) == SQLITE_NULL;
}

Database::Database(const std::filesystem::path& path) : m_path(path) {
    // The file holds sealed phone numbers and the audit log: nobody else
    // reads it. Made (or set) 0600 before SQLite opens it; SQLite gives its
    // -wal and -shm files the same mode.
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, S_IRUSR | S_IWUSR);
    if (fd >= 0) {
        (void)::fchmod(fd, S_IRUSR | S_IWUSR);
        ::close(fd);
    }
    if (sqlite3_open_v2(path.c_str(), &m_db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        nullptr) != SQLITE_OK) {
        const std::string message = m_db ? sqlite3_errmsg(m_db) : "out of memory";
        sqlite3_close(m_db);
        throw DatabaseError("cannot open database " + path.string() + ": " + message);
    }
    try {
        sqlite3_busy_timeout(m_db, 5000);
        use_wal();
        execute("PRAGMA foreign_keys=ON");
        // Erased numbers and SMS payloads are overwritten, not left in free pages.
        execute("PRAGMA secure_delete=ON");
        create_schema();
    } catch (const DatabaseError& error) {
        sqlite3_close(m_db);
        throw DatabaseError("database " + path.string() + ": " + error.what());
    }
}

Database::~Database() {
    for (auto& [sql, statements] : m_statements) {
        for (auto* statement : statements) {
            sqlite3_finalize(statement);
        }
    }
    sqlite3_close(m_db);
}

// Kept under the caller's text, as it is asked for again. Text beyond the
// first statement is not run. Once kKeptTexts texts are kept, others are
// prepared afresh each time: the firmware's SQL is fixed text, far fewer.
Statement Database::prepare(std::string_view sql) {
    std::lock_guard lock(m_mutex);
    auto kept = m_statements.find(sql);
    if (kept == m_statements.end() && m_statements.size() < kKeptTexts) {
        kept = m_statements.emplace(std::string(sql), std::vector<sqlite3_stmt*>{}).first;
    }
    if (kept == m_statements.end()) {
        return Statement(m_db, sql);
    }
    if (!kept->second.empty()) {
        auto* statement = kept->second.back();
        kept->second.pop_back();
        return Statement(m_db, statement, this, &kept->first);
    }
    sqlite3_stmt* statement = nullptr;
    if (sqlite3_prepare_v2(m_db, sql.data(), static_cast<int>(sql.size()), &statement, nullptr) !=
        SQLITE_OK) {
        fail(m_db, "prepare");
    }
    return Statement(m_db, statement, this, &kept->first);
}

void Database::take_back(sqlite3_stmt* statement, const std::string& sql) noexcept {
    std::lock_guard lock(m_mutex);
    sqlite3_reset(statement);
    sqlite3_clear_bindings(statement);
    auto& kept = m_statements.find(sql)->second;
    if (kept.size() < kKeptPerText) {
        try {
            kept.push_back(statement);
            return;
        } catch (const std::bad_alloc&) {
            // Not kept, then.
        }
    }
    sqlite3_finalize(statement);
}

// In WAL mode commits share their syncs (GroupSync). Where the file system
// cannot hold a WAL (no shared memory), SQLite keeps its rollback journal:
// then every commit syncs itself (synchronous=FULL) and none waits here.
void Database::use_wal() {
    std::string mode;
    {
        auto statement = prepare("PRAGMA journal_mode=WAL");
        if (statement.step()) {
            mode = statement.text(0);
        }
    }
    if (mode != "wal") {
        execute("PRAGMA synchronous=FULL");
        return;
    }
    execute("PRAGMA synchronous=NORMAL");
    // A read opens (creating) the WAL. Its name is SQLite's own: through a
    // symbolic link to the database, SQLite keeps the WAL beside the target.
    execute("SELECT count(*) FROM sqlite_master");
    const char* wal = sqlite3_filename_wal(sqlite3_db_filename(m_db, "main"));
    try {
        m_sync = std::make_unique<GroupSync>(wal);
    } catch (const std::system_error& error) {
        throw DatabaseError(std::string("the WAL cannot be opened for its syncs: ") + error.what(),
                            SQLITE_CANTOPEN);
    }
    // Replaces SQLite's automatic checkpoint, which is a WAL hook of its
    // own: nothing may set PRAGMA wal_autocheckpoint on this connection,
    // or commits would no longer be counted and never waited for.
    sqlite3_wal_hook(m_db, &Database::on_wal_commit, this);
}

int Database::on_wal_commit(void* self, sqlite3* db, const char* name, int pages) {
    static_cast<Database*>(self)->m_sync->committed();
    if (pages >= kCheckpointPages) {
        (void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    }
    return SQLITE_OK;
}

std::uint64_t Database::last_commit() const noexcept {
    return m_sync ? m_sync->last_committed() : 0;
}

void Database::make_durable(std::uint64_t sequence) {
    if (!m_sync || sequence == 0) {
        return;
    }
    const auto failure = m_sync->wait(sequence);
    if (!failure) {
        return;
    }
    DatabaseError error("commits cannot be made durable until otpboxd restarts: " + *failure,
                        SQLITE_IOERR);
    {
        std::lock_guard lock(m_mutex);
        note(error);
    }
    throw error;
}

Database::CommitCounts Database::commit_counts() const {
    if (!m_sync) {
        return {};
    }
    return {m_sync->last_committed(), m_sync->synced(), m_sync->syncs()};
}

void Database::execute(std::string_view sql) {
    const std::string statement(sql);
    char* message = nullptr;
    const int result = sqlite3_exec(m_db, statement.c_str(), nullptr, nullptr, &message);
    if (result != SQLITE_OK) {
        const std::string text = message ? message : "unknown error";
        sqlite3_free(message);
        throw DatabaseError(text, result & 0xff);
    }
}

void Database::begin(bool outermost) {
    prepare(outermost ? "BEGIN IMMEDIATE" : "SAVEPOINT nested").run();
}

// A request answered at its deadline commits nothing more; while its
// commit runs, the answer at the deadline waits for it.
void Database::finish(bool outermost) {
    if (!outermost) {
        prepare("RELEASE nested").run();
        return;
    }
    auto* gate = thread_commit_gate();
    if (gate == nullptr) {
        prepare("COMMIT").run();
        return;
    }
    if (!gate->enter()) {
        throw RequestAnswered();
    }
    try {
        prepare("COMMIT").run();
    } catch (...) {
        gate->leave(false);
        throw;
    }
    gate->leave(true);
}

void Database::undo(bool outermost, std::size_t kept) noexcept {
    // An error such as SQLITE_FULL may have ended the whole transaction
    // already; then these statements fail, and there is nothing left to undo.
    if (outermost) {
        sqlite3_exec(m_db, "ROLLBACK", nullptr, nullptr, nullptr);
        m_after_commit.clear();
    } else {
        sqlite3_exec(m_db, "ROLLBACK TO nested; RELEASE nested", nullptr, nullptr, nullptr);
        m_after_commit.resize(std::min(kept, m_after_commit.size()));
    }
}

void Database::after_commit(std::function<void()> action) {
    std::lock_guard lock(m_mutex);
    if (sqlite3_get_autocommit(m_db) != 0) {
        action();
        return;
    }
    m_after_commit.push_back(std::move(action));
}

std::vector<std::function<void()>> Database::take_after_commit() noexcept {
    auto actions = std::move(m_after_commit);
    m_after_commit.clear();
    return actions;
}

void Database::create_schema() {
    std::lock_guard lock(m_mutex);
    execute(kSchema);
    // A database made before requests were fingerprinted gets the column.
    auto column =
        prepare("SELECT 1 FROM pragma_table_info('idempotency') WHERE name = 'fingerprint'");
    if (!column.step()) {
        execute("ALTER TABLE idempotency ADD COLUMN fingerprint TEXT NOT NULL DEFAULT ''");
    }
}

void Database::note(const DatabaseError& error) {
    if (is_storage_fault(error.code())) {
        m_write_fault = error.what();
    }
}

void Database::clear_write_fault() {
    if (!sync_failure()) {
        m_write_fault.reset();
    }
}

std::optional<std::string> Database::sync_failure() const {
    return m_sync ? m_sync->failure() : std::nullopt;
}

std::optional<bool> Database::healthy(std::chrono::milliseconds wait) {
    std::unique_lock lock(m_mutex, std::defer_lock);
    if (!lock.try_lock_for(wait)) {
        return std::nullopt;
    }
    // Never released: the check does not wait for other requests' syncs
    // (a disk slow to sync must not hold the health answer).
    const Hold hold(*this, std::move(lock));
    try {
        auto statement = prepare("SELECT count(*) FROM sqlite_master");
        if (!statement.step()) {
            return false;
        }
    } catch (const DatabaseError&) {
        return false;
    }
    if (m_write_fault) {
        // One small write, to see whether the storage takes writes again.
        try {
            transaction([&] {
                execute("INSERT OR REPLACE INTO health_probe (id, at) VALUES (1, unixepoch())");
            });
        } catch (const DatabaseError&) {
            return false;
        }
    }
    // Still set after a commit when a sync has failed for good.
    return !m_write_fault.has_value();
}

bool Database::within(std::chrono::milliseconds wait, const std::function<void()>& work) {
    std::unique_lock lock(m_mutex, std::defer_lock);
    if (!lock.try_lock_for(wait)) {
        return false;
    }
    Hold hold(*this, std::move(lock));
    work();
    hold.release();
    return true;
}

std::optional<std::string> Database::write_fault() {
    std::lock_guard lock(m_mutex);
    return m_write_fault;
}

}  // namespace otpbox::firmware
