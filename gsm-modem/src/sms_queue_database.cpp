#include "sms_queue_database.hpp"

namespace otpbox::gsm {
namespace {

[[noreturn]] void fail(sqlite3* db, std::string_view step) {
    throw SmsDatabaseError("sms queue: " + std::string(step) + ": " + sqlite3_errmsg(db));
}

constexpr auto kBusyTimeoutMs = 5000;

}  // namespace

SqliteStatement::SqliteStatement(sqlite3* db, std::string_view sql) : m_db(db) {
    if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &m_statement, nullptr) !=
        SQLITE_OK) {
        fail(db, "prepare");
    }
}

SqliteStatement::~SqliteStatement() {
    sqlite3_finalize(m_statement);
}

SqliteStatement& SqliteStatement::bind(int index, std::int64_t value) {
    if (sqlite3_bind_int64(m_statement, index, value) != SQLITE_OK) {
        fail(m_db, "bind");
    }
    return *this;
}

SqliteStatement& SqliteStatement::bind(int index, std::string_view value) {
    if (sqlite3_bind_text(m_statement, index, value.data(), static_cast<int>(value.size()),
                          SQLITE_TRANSIENT) != SQLITE_OK) {
        fail(m_db, "bind");
    }
    return *this;
}

SqliteStatement& SqliteStatement::bind(int index, std::span<const std::uint8_t> value) {
    if (sqlite3_bind_blob(m_statement, index, value.data(), static_cast<int>(value.size()),
                          SQLITE_TRANSIENT) != SQLITE_OK) {
        fail(m_db, "bind");
    }
    return *this;
}

SqliteStatement& SqliteStatement::bind_null(int index) {
    if (sqlite3_bind_null(m_statement, index) != SQLITE_OK) {
        fail(m_db, "bind");
    }
    return *this;
}

bool SqliteStatement::step() {
    const int rc = sqlite3_step(m_statement);
    if (rc == SQLITE_ROW) {
        return true;
    }
    if (rc != SQLITE_DONE) {
        fail(m_db, "step");
    }
    return false;
}

void SqliteStatement::run() {
    while (step()) {
    }
}

std::int64_t SqliteStatement::integer(int column) const {
    return sqlite3_column_int64(m_statement, column);
}

std::string SqliteStatement::text(int column) const {
    const auto* data = sqlite3_column_text(m_statement, column);
    return data ? std::string(reinterpret_cast<const char*>(data),
                              static_cast<std::size_t>(sqlite3_column_bytes(m_statement, column)))
                : std::string();
}

std::vector<std::uint8_t> SqliteStatement::blob(int column) const {
    const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(m_statement, column));
    const auto size = static_cast<std::size_t>(sqlite3_column_bytes(m_statement, column));
    return data ? std::vector<std::uint8_t>(data, data + size) : std::vector<std::uint8_t>();
}

SqliteConnection::SqliteConnection(const std::filesystem::path& path) {
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
    if (sqlite3_open_v2(path.c_str(), &m_db, flags, nullptr) != SQLITE_OK) {
        const std::string message = m_db ? sqlite3_errmsg(m_db) : "out of memory";
        sqlite3_close(m_db);
        throw SmsDatabaseError("sms queue: open " + path.string() + ": " + message);
    }
    sqlite3_busy_timeout(m_db, kBusyTimeoutMs);
    // WAL with synchronous=FULL: a commit is on disk when it returns, so an
    // enqueued SMS and a recorded +CMGS survive a power cut.
    execute("PRAGMA journal_mode=WAL");
    execute("PRAGMA synchronous=FULL");
    execute("PRAGMA foreign_keys=ON");
}

SqliteConnection::~SqliteConnection() {
    sqlite3_close_v2(m_db);
}

void SqliteConnection::execute(std::string_view sql) {
    char* error = nullptr;
    if (sqlite3_exec(m_db, std::string(sql).c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
        const std::string message = error ? error : "unknown";
        sqlite3_free(error);
        throw SmsDatabaseError("sms queue: " + message);
    }
}

SqliteTransaction::SqliteTransaction(SqliteConnection& connection) : m_connection(connection) {
    m_connection.execute("BEGIN IMMEDIATE");
}

SqliteTransaction::~SqliteTransaction() {
    if (!m_done) {
        try {
            m_connection.execute("ROLLBACK");
        } catch (...) {
            // Nothing to do: SQLite rolls back an open transaction on close.
        }
    }
}

void SqliteTransaction::commit() {
    m_connection.execute("COMMIT");
    m_done = true;
}

}  // namespace otpbox::gsm
