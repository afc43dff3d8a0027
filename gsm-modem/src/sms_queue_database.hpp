#pragma once

// A thin RAII layer over the SQLite C API for the queue's own connection.

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace otpbox::gsm {

class SmsDatabaseError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class SqliteStatement {
  public:
    SqliteStatement(sqlite3* db, std::string_view sql);
    ~SqliteStatement();
    SqliteStatement(const SqliteStatement&) = delete;
    SqliteStatement& operator=(const SqliteStatement&) = delete;

    SqliteStatement& bind(int index, std::int64_t value);
    SqliteStatement& bind(int index, std::string_view value);
    SqliteStatement& bind(int index, std::span<const std::uint8_t> value);
    SqliteStatement& bind_null(int index);

    // True while a row is available.
    [[nodiscard]] bool step();
    void run();  // steps a statement that returns no rows

    [[nodiscard]] std::int64_t integer(int column) const;
    [[nodiscard]] std::string text(int column) const;
    [[nodiscard]] std::vector<std::uint8_t> blob(int column) const;

  private:
    sqlite3* m_db;
    sqlite3_stmt* m_statement = nullptr;
};

class SqliteConnection {
  public:
    explicit SqliteConnection(const std::filesystem::path& path);
    ~SqliteConnection();
    SqliteConnection(const SqliteConnection&) = delete;
    SqliteConnection& operator=(const SqliteConnection&) = delete;

    void execute(std::string_view sql);
    [[nodiscard]] SqliteStatement prepare(std::string_view sql) { return {m_db, sql}; }
    [[nodiscard]] int changes() const noexcept { return sqlite3_changes(m_db); }
    [[nodiscard]] sqlite3* handle() const noexcept { return m_db; }

  private:
    sqlite3* m_db = nullptr;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back when left by an exception.
class SqliteTransaction {
  public:
    explicit SqliteTransaction(SqliteConnection& connection);
    ~SqliteTransaction();
    SqliteTransaction(const SqliteTransaction&) = delete;
    SqliteTransaction& operator=(const SqliteTransaction&) = delete;
    void commit();

  private:
    SqliteConnection& m_connection;
    bool m_done = false;
};

}  // namespace otpbox::gsm
