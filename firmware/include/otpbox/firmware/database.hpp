#pragma once

// SQLite (WAL) as the appliance's store: one connection per process, used
// under a mutex; every change runs in one immediate transaction that is
// committed (synchronous=FULL) before its answer leaves.

#include <sqlite3.h>

#include <chrono>
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
    // code: SQLite's primary result code, 0 when the error is not SQLite's.
    explicit DatabaseError(const std::string& what, int code = 0)
        : std::runtime_error(what), m_code(code) {}

    [[nodiscard]] int code() const noexcept { return m_code; }

  private:
    int m_code;
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
    // transaction, work runs in a savepoint of it: when work throws, only
    // its own changes are undone, and the outer transaction decides about
    // the rest; nothing is durable before the outermost commit.
    template <class Work>
    auto transaction(Work&& work) -> decltype(work());

    // Runs action once the outermost transaction around this call has
    // committed (at once outside any); forgotten when the part of the
    // transaction that asked for it is rolled back. An action must not throw.
    void after_commit(std::function<void()> action);

    // A read without a transaction of its own, under the lock.
    template <class Work>
    auto read(Work&& work) -> decltype(work());

    [[nodiscard]] Statement prepare(std::string_view sql) { return Statement(m_db, sql); }
    void execute(std::string_view sql);

    // The connection, for a library that writes its own tables in this
    // database inside a transaction of this class (the SMS queue). Only
    // under transaction().
    [[nodiscard]] sqlite3* connection() noexcept { return m_db; }

    // Reads work, and writes too: after a write failed for a reason of the
    // storage (full, read-only, I/O error, locked too long), a small write
    // is tried each time until one commits again. Nullopt when the database
    // stayed held by a transaction (one waiting for a stalled HSM, say) for
    // longer than `wait`: a health check must not wait with it.
    [[nodiscard]] std::optional<bool> healthy(
        std::chrono::milliseconds wait = std::chrono::milliseconds(200));
    // Runs work holding the database when it can be had within wait; false
    // when another thread holds it longer (a request stuck in the HSM).
    bool within(std::chrono::milliseconds wait, const std::function<void()>& work);
    // Why writes fail, while they do.
    [[nodiscard]] std::optional<std::string> write_fault();
    [[nodiscard]] const std::filesystem::path& path() const { return m_path; }

  private:
    void create_schema();
    // Starts the outermost transaction or a savepoint inside it.
    void begin(bool outermost);
    // Commits the outermost transaction or releases the savepoint.
    void finish(bool outermost);
    // Undoes the transaction or the savepoint and the actions it asked for
    // (those after the first `kept`). Never throws.
    void undo(bool outermost, std::size_t kept) noexcept;
    void run_after_commit() noexcept;
    // Remembers a failure that says the storage cannot take writes.
    void note(const DatabaseError& error);

    std::filesystem::path m_path;
    sqlite3* m_db = nullptr;
    std::recursive_timed_mutex m_mutex;
    std::vector<std::function<void()>> m_after_commit;  // under m_mutex
    std::optional<std::string> m_write_fault;           // under m_mutex
};

template <class Work>
auto Database::transaction(Work&& work) -> decltype(work()) {
    if constexpr (std::is_void_v<decltype(work())>) {
        (void)transaction([&] {
            work();
            return true;
        });
    } else {
        std::lock_guard lock(m_mutex);
        const bool outermost = sqlite3_get_autocommit(m_db) != 0;
        const auto kept = m_after_commit.size();
        std::optional<decltype(work())> result;
        try {
            begin(outermost);
            result.emplace(work());
            finish(outermost);
        } catch (const DatabaseError& error) {
            note(error);
            undo(outermost, kept);
            throw;
        } catch (...) {
            undo(outermost, kept);
            throw;
        }
        if (outermost) {
            m_write_fault.reset();
            run_after_commit();
        }
        return std::move(*result);
    }
}

template <class Work>
auto Database::read(Work&& work) -> decltype(work()) {
    std::lock_guard lock(m_mutex);
    return work();
}

}  // namespace otpbox::firmware
