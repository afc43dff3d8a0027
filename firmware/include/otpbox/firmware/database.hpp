#pragma once

// SQLite (WAL) as the appliance's store: one connection per process, used
// under a mutex; every change runs in one immediate transaction that is
// committed (synchronous=FULL) before its answer leaves.

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace otpbox::firmware {

class DatabaseError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// One prepared statement, finalized when it goes out of scope.
class Statement {
  public:
    Statement(sqlite3* db, std::string_view sql);
    ~Statement();
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;
    Statement(Statement&& other) noexcept;
    Statement& operator=(Statement&&) = delete;

    Statement& bind(int index, std::int64_t value);
    Statement& bind(int index, std::string_view value);
    Statement& bind_blob(int index, std::span<const std::uint8_t> value);
    Statement& bind_null(int index);

    // Steps once; true while a row is available.
    bool step();
    // Steps to the end (for statements without rows).
    void run();

    [[nodiscard]] std::int64_t integer(int column) const;
    [[nodiscard]] std::string text(int column) const;
    [[nodiscard]] std::vector<std::uint8_t> blob(int column) const;
    [[nodiscard]] bool is_null(int column) const;

  private:
    sqlite3* m_db;
    sqlite3_stmt* m_stmt = nullptr;
};

class Database {
  public:
    // Opens (creating) the database, sets WAL and durability, creates the
    // schema. Throws DatabaseError naming the file.
    explicit Database(const std::filesystem::path& path);
    ~Database();
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;

    // Runs work inside BEGIN IMMEDIATE ... COMMIT under the process's lock;
    // rolls back when work throws, and rethrows. Called inside another
    // transaction, work joins it: both commit or roll back together.
    template <class Work>
    auto transaction(Work&& work) -> decltype(work());

    // A read without a transaction of its own, under the lock.
    template <class Work>
    auto read(Work&& work) -> decltype(work());

    [[nodiscard]] Statement prepare(std::string_view sql) { return Statement(m_db, sql); }
    void execute(std::string_view sql);

    [[nodiscard]] bool healthy();
    [[nodiscard]] const std::filesystem::path& path() const { return m_path; }

  private:
    void create_schema();

    std::filesystem::path m_path;
    sqlite3* m_db = nullptr;
    std::recursive_mutex m_mutex;
};

template <class Work>
auto Database::transaction(Work&& work) -> decltype(work()) {
    std::lock_guard lock(m_mutex);
    if (sqlite3_get_autocommit(m_db) == 0) {
        return work();
    }
    execute("BEGIN IMMEDIATE");
    try {
        if constexpr (std::is_void_v<decltype(work())>) {
            work();
            execute("COMMIT");
        } else {
            auto result = work();
            execute("COMMIT");
            return result;
        }
    } catch (...) {
        sqlite3_exec(m_db, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

template <class Work>
auto Database::read(Work&& work) -> decltype(work()) {
    std::lock_guard lock(m_mutex);
    return work();
}

}  // namespace otpbox::firmware
