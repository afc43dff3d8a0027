#pragma once

// SQLite (WAL) as the appliance's store: one connection per process, used
// under a mutex; every change runs in one immediate transaction that is on
// disk before its answer leaves. Commits share their syncs (group commit):
// a transaction commits under the mutex without syncing (synchronous=NORMAL)
// and then, with the mutex released, waits until one fdatasync of the WAL
// has run after its commit; transactions that wait together share that
// sync. Whatever ends the outermost transaction or a read, its caller sees
// nothing before every commit it could have seen is on disk: an answer never
// rests on a change that a power cut could still take back.

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace otpbox::firmware {

class GroupSync;

class DatabaseError : public std::runtime_error {
  public:
    // code: SQLite's primary result code, 0 when the error is not SQLite's.
    explicit DatabaseError(const std::string& what, int code = 0)
        : std::runtime_error(what), m_code(code) {}

    [[nodiscard]] int code() const noexcept { return m_code; }

  private:
    int m_code;
};

class Database;

// One prepared statement, finalized when it goes out of scope, or reset and
// kept for the next use of the same SQL when its Database prepared it.
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
    friend class Database;
    Statement(sqlite3* db, sqlite3_stmt* statement, Database* home, const std::string* sql)
        : m_db(db), m_stmt(statement), m_home(home), m_sql(sql) {}

    sqlite3* m_db;
    sqlite3_stmt* m_stmt = nullptr;
    Database* m_home = nullptr;          // takes the statement back
    const std::string* m_sql = nullptr;  // the text it is kept under, in m_home
};

class Database {
  public:
    // Opens (creating) the database, sets WAL and durability, creates the
    // schema. Throws DatabaseError naming the file.
    explicit Database(const std::filesystem::path& path);
    ~Database();
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;

    // Runs work inside BEGIN IMMEDIATE ... COMMIT under the process's lock,
    // and returns once the commit is on disk; rolls back when work throws,
    // and rethrows (after the commits it read are on disk). Called inside another
    // transaction, work runs in a savepoint of it: when work throws, only
    // its own changes are undone, and the outer transaction decides about
    // the rest; nothing is durable before the outermost commit.
    template <class Work>
    auto transaction(Work&& work) -> decltype(work());

    // Runs action once the outermost transaction around this call has
    // committed and is on disk, without the lock (at once outside any); forgotten when the part of
    // the transaction that asked for it is rolled back. An action must not throw.
    void after_commit(std::function<void()> action);

    // A read without a transaction of its own, under the lock; returns once
    // the commits it could have read are on disk.
    template <class Work>
    auto read(Work&& work) -> decltype(work());

    // A read that no answer rests on, since a transaction checks again what
    // it found (what to work out in the HSM before that transaction): under
    // the lock, but without waiting for the commits it could have seen to be
    // on disk.
    template <class Work>
    auto glance(Work&& work) -> decltype(work());

    // A statement for sql, prepared once and then reused: parsing a
    // statement costs more than running most of ours.
    [[nodiscard]] Statement prepare(std::string_view sql);
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
    // Why a sync of the WAL failed, once one has: from then on every
    // transaction and read fails, until the process opens the file anew.
    [[nodiscard]] std::optional<std::string> sync_failure() const;
    [[nodiscard]] const std::filesystem::path& path() const { return m_path; }

    // Commits made so far, how many of them are known to be on disk, and
    // the syncs that made them so (fewer than the commits when they shared).
    struct CommitCounts {
        std::uint64_t commits = 0;
        std::uint64_t durable = 0;
        std::uint64_t syncs = 0;
    };
    [[nodiscard]] CommitCounts commit_counts() const;

  private:
    class Hold;
    friend class Statement;
    // Resets a statement from prepare() and keeps it for its SQL. Never throws.
    void take_back(sqlite3_stmt* statement, const std::string& sql) noexcept;

    // Sets WAL mode and, where it took, group commit. Throws DatabaseError
    // when the WAL file cannot be opened for its syncs.
    void use_wal();
    void create_schema();
    // Starts the outermost transaction or a savepoint inside it.
    void begin(bool outermost);
    // Commits the outermost transaction or releases the savepoint.
    void finish(bool outermost);
    // Undoes the transaction or the savepoint and the actions it asked for
    // (those after the first `kept`). Never throws.
    void undo(bool outermost, std::size_t kept) noexcept;
    // Takes the actions of the committed outermost transaction.
    std::vector<std::function<void()>> take_after_commit() noexcept;
    // The commits made so far; sequence numbers for make_durable.
    [[nodiscard]] std::uint64_t last_commit() const noexcept;
    // Waits until every commit up to `sequence` is on disk; throws
    // DatabaseError (and notes the fault) when the sync failed. Called
    // without the lock, or holding it only through within() or read().
    void make_durable(std::uint64_t sequence);
    // SQLite's WAL hook: counts each commit once its frames are written and
    // checkpoints as SQLite's own hook would.
    static int on_wal_commit(void* self, sqlite3* db, const char* name, int pages);
    // Remembers a failure that says the storage cannot take writes.
    void note(const DatabaseError& error);
    // After a commit: writes work again, unless a sync failed for good.
    void clear_write_fault();

    std::filesystem::path m_path;
    sqlite3* m_db = nullptr;
    std::unique_ptr<GroupSync> m_sync;
    int m_holds = 0;  // under m_mutex: the owning thread's nested holds
    // Statements not in use, by their SQL; under m_mutex.
    std::map<std::string, std::vector<sqlite3_stmt*>, std::less<>> m_statements;
    std::recursive_timed_mutex m_mutex;
    std::vector<std::function<void()>> m_after_commit;  // under m_mutex
    std::optional<std::string> m_write_fault;           // under m_mutex
};

// The calling thread's hold on the database. Holds nest (a read inside a
// transaction, a transaction inside within()); only the outermost, when it
// ends by release(), waits until the commits it could have seen are on disk,
// and it does so without the lock. Ended by its destructor instead (an
// error of the database itself), it does not wait.
class Database::Hold {
  public:
    explicit Hold(Database& database) : Hold(database, std::unique_lock(database.m_mutex)) {}
    Hold(Database& database, std::unique_lock<std::recursive_timed_mutex> locked)
        : m_database(database), m_lock(std::move(locked)) {
        ++m_database.m_holds;
    }
    ~Hold() {
        if (m_lock.owns_lock()) {
            --m_database.m_holds;
        }
    }
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;

    // Throws DatabaseError when a commit it waited for could not be synced.
    void release() {
        const bool outermost = --m_database.m_holds == 0;
        const auto seen = m_database.last_commit();
        m_lock.unlock();
        if (outermost) {
            m_database.make_durable(seen);
        }
    }

  private:
    Database& m_database;
    std::unique_lock<std::recursive_timed_mutex> m_lock;
};

template <class Work>
auto Database::transaction(Work&& work) -> decltype(work()) {
    if constexpr (std::is_void_v<decltype(work())>) {
        (void)transaction([&] {
            work();
            return true;
        });
    } else {
        Hold hold(*this);
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
            hold.release();
            throw;
        } catch (...) {
            undo(outermost, kept);
            // A refusal may rest on another request's commit.
            hold.release();
            throw;
        }
        if (!outermost) {
            return std::move(*result);
        }
        auto actions = take_after_commit();
        clear_write_fault();
        hold.release();
        for (auto& action : actions) {
            action();
        }
        return std::move(*result);
    }
}

template <class Work>
auto Database::read(Work&& work) -> decltype(work()) {
    Hold hold(*this);
    if constexpr (std::is_void_v<decltype(work())>) {
        work();
        hold.release();
    } else {
        auto result = work();
        hold.release();
        return result;
    }
}

template <class Work>
auto Database::glance(Work&& work) -> decltype(work()) {
    const Hold hold(*this);  // never released: it waits for no sync
    return work();
}

}  // namespace otpbox::firmware
