// Transactions of the firmware's store: nested work runs in a savepoint,
// actions wait for the outermost commit, and failing writes show in health.

#include "otpbox/firmware/database.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "test_support.hpp"

namespace otpbox::firmware {
namespace {

class DatabaseTest : public ::testing::Test {
  protected:
    DatabaseTest() : database(dir.path() / "otpbox.db") {
        database.execute("CREATE TABLE notes (text TEXT NOT NULL)");
    }

    std::int64_t notes() {
        auto count = database.prepare("SELECT count(*) FROM notes");
        EXPECT_TRUE(count.step());
        return count.integer(0);
    }

    // A database made in a folder of its own, and a symbolic link to it.
    std::pair<std::filesystem::path, std::filesystem::path> linked_database() {
        std::filesystem::create_directory(dir.path() / "real");
        const auto target = dir.path() / "real" / "store.db";
        const auto link = dir.path() / "store.db";
        { Database made(target); }
        std::filesystem::create_symlink(target, link);
        return {target, link};
    }

    void note(const char* text) {
        database.prepare("INSERT INTO notes (text) VALUES (?)").bind(1, text).run();
    }

    otpbox::test::TempDir dir;
    Database database;
};

TEST_F(DatabaseTest, FailedInnerWorkUndoesOnlyItsOwnChanges) {
    database.transaction([&] {
        note("outer");
        try {
            database.transaction([&] {
                note("inner");
                throw std::runtime_error("inner work fails");
            });
        } catch (const std::runtime_error&) {
        }
        note("after");
    });
    auto texts = database.prepare("SELECT group_concat(text, ',') FROM notes");
    ASSERT_TRUE(texts.step());
    EXPECT_EQ(texts.text(0), "outer,after");
}

TEST_F(DatabaseTest, FailedOuterWorkUndoesCompletedInnerWork) {
    EXPECT_THROW(database.transaction([&] {
        database.transaction([&] { note("inner"); });
        throw std::runtime_error("outer work fails");
    }),
                 std::runtime_error);
    EXPECT_EQ(notes(), 0);
}

TEST_F(DatabaseTest, ActionsRunAfterTheOutermostCommitOnly) {
    int ran = 0;
    database.transaction([&] {
        database.transaction([&] {
            note("inner");
            database.after_commit([&] { ++ran; });
        });
        // The inner transaction has ended, the outer one has not committed.
        EXPECT_EQ(ran, 0);
    });
    EXPECT_EQ(ran, 1);

    database.after_commit([&] { ++ran; });
    EXPECT_EQ(ran, 2) << "outside a transaction an action runs at once";
}

TEST_F(DatabaseTest, ActionsOfUndoneWorkNeverRun) {
    int kept = 0;
    int undone = 0;
    database.transaction([&] {
        database.after_commit([&] { ++kept; });
        try {
            database.transaction([&] {
                database.after_commit([&] { ++undone; });
                throw std::runtime_error("inner work fails");
            });
        } catch (const std::runtime_error&) {
        }
    });
    EXPECT_EQ(kept, 1);
    EXPECT_EQ(undone, 0);

    EXPECT_THROW(database.transaction([&] {
        database.after_commit([&] { ++undone; });
        throw std::runtime_error("outer work fails");
    }),
                 std::runtime_error);
    database.transaction([&] { note("next"); });
    EXPECT_EQ(undone, 0);
}

TEST_F(DatabaseTest, FailingWritesMakeItUnhealthyUntilOneCommitsAgain) {
    EXPECT_EQ(database.healthy(), true);
    // The connection refuses writes as a read-only or full file would.
    database.execute("PRAGMA query_only=ON");
    EXPECT_THROW(database.transaction([&] { note("lost"); }), DatabaseError);
    EXPECT_EQ(database.healthy(), false) << "reads work, but writes do not";
    ASSERT_TRUE(database.write_fault());
    EXPECT_NE(database.write_fault()->find("readonly"), std::string::npos)
        << *database.write_fault();

    database.execute("PRAGMA query_only=OFF");
    EXPECT_EQ(database.healthy(), true) << "the health check's own write commits again";
    EXPECT_FALSE(database.write_fault());
    EXPECT_EQ(notes(), 0);
}

TEST_F(DatabaseTest, RefusedWorkIsNoStorageFault) {
    database.execute("CREATE TABLE unique_notes (text TEXT UNIQUE)");
    database.execute("INSERT INTO unique_notes VALUES ('one')");
    EXPECT_THROW(
        database.transaction([&] { database.execute("INSERT INTO unique_notes VALUES ('one')"); }),
        DatabaseError);
    EXPECT_FALSE(database.write_fault());
    EXPECT_EQ(database.healthy(), true);
}

// A transaction held by another thread (a request waiting for a stalled HSM)
// makes the check give up after its wait instead of waiting with it.
TEST_F(DatabaseTest, HealthDoesNotWaitForAHeldTransaction) {
    std::promise<void> inside;
    std::promise<void> leave;
    std::thread holder([&] {
        database.transaction([&] {
            note("held");
            inside.set_value();
            leave.get_future().wait();
        });
    });
    inside.get_future().wait();
    EXPECT_EQ(database.healthy(std::chrono::milliseconds(50)), std::nullopt);
    leave.set_value();
    holder.join();
    EXPECT_EQ(database.healthy(), true);
    EXPECT_EQ(notes(), 1);
}

// Every transaction returns only once its commit is on disk, and commits
// made while a sync runs wait for the next one together.
TEST_F(DatabaseTest, ConcurrentCommitsAreAllDurableWhenTheyReturn) {
    constexpr int kThreads = 8;
    constexpr int kEach = 50;
    const auto before = database.commit_counts();
    std::vector<std::thread> writers;
    for (int t = 0; t < kThreads; ++t) {
        writers.emplace_back([&] {
            for (int i = 0; i < kEach; ++i) {
                database.transaction([&] { note("concurrent"); });
            }
        });
    }
    for (auto& writer : writers) {
        writer.join();
    }
    const auto after = database.commit_counts();
    EXPECT_EQ(after.commits - before.commits, static_cast<std::uint64_t>(kThreads * kEach));
    EXPECT_EQ(after.durable, after.commits);
    EXPECT_GE(after.syncs - before.syncs, 1u);
    EXPECT_LE(after.syncs - before.syncs, after.commits - before.commits);
    EXPECT_EQ(notes(), kThreads * kEach);
}

// A read, and work refused after reading, return only once what they could
// have read is on disk. A write outside any transaction (as the schema's)
// commits without waiting for its sync, so the next reader waits for it.
TEST_F(DatabaseTest, ReadsAndRefusalsWaitForWhatTheySaw) {
    database.execute("INSERT INTO notes (text) VALUES ('unsynced')");
    auto counts = database.commit_counts();
    ASSERT_GT(counts.commits, counts.durable);
    EXPECT_EQ(database.read([&] { return notes(); }), 1);
    counts = database.commit_counts();
    EXPECT_EQ(counts.durable, counts.commits);

    database.execute("INSERT INTO notes (text) VALUES ('unsynced too')");
    EXPECT_THROW(database.transaction([&] {
        note("refused");
        throw std::runtime_error("refused");
    }),
                 std::runtime_error);
    counts = database.commit_counts();
    EXPECT_EQ(counts.durable, counts.commits);
    EXPECT_EQ(notes(), 2);
}

// Only the outermost hold waits, and without the lock: a read inside a
// transaction must not wait for a sync while it holds the database, nor
// must the health check.
TEST_F(DatabaseTest, NestedReadsAndHealthDoNotWaitForSyncs) {
    database.execute("INSERT INTO notes (text) VALUES ('unsynced')");
    EXPECT_EQ(database.healthy(), true);
    auto counts = database.commit_counts();
    EXPECT_LT(counts.durable, counts.commits) << "the health check waited";
    database.transaction([&] {
        EXPECT_EQ(database.read([&] { return notes(); }), 1);
        const auto inside = database.commit_counts();
        EXPECT_LT(inside.durable, inside.commits) << "a nested read waited, holding the lock";
        note("two");
    });
    counts = database.commit_counts();
    EXPECT_EQ(counts.durable, counts.commits);
}

TEST_F(DatabaseTest, KeptStatementsStartWithoutBindings) {
    {
        auto bound = database.prepare("SELECT ?");
        bound.bind(1, std::int64_t{7});
        ASSERT_TRUE(bound.step());
        EXPECT_EQ(bound.integer(0), 7);
    }
    auto again = database.prepare("SELECT ?");
    ASSERT_TRUE(again.step());
    EXPECT_TRUE(again.is_null(0));
}

TEST_F(DatabaseTest, SameSqlPreparedWhileInUseRunsApart) {
    note("a");
    note("b");
    auto outer = database.prepare("SELECT text FROM notes ORDER BY text");
    ASSERT_TRUE(outer.step());
    EXPECT_EQ(outer.text(0), "a");
    {
        auto inner = database.prepare("SELECT text FROM notes ORDER BY text");
        ASSERT_TRUE(inner.step());
        EXPECT_EQ(inner.text(0), "a");
        ASSERT_TRUE(inner.step());
        EXPECT_EQ(inner.text(0), "b");
    }
    ASSERT_TRUE(outer.step());
    EXPECT_EQ(outer.text(0), "b");
    EXPECT_FALSE(outer.step());
}

// SQLite removes the WAL file when its last connection closes, which it
// cannot while a statement is left unfinalized: the kept ones are finalized.
TEST_F(DatabaseTest, ClosesCleanlyWithKeptStatements) {
    const auto path = dir.path() / "other.db";
    {
        Database other(path);
        other.execute("CREATE TABLE t (x INTEGER)");
        for (int i = 0; i < 200; ++i) {
            other.transaction([&] {
                other.prepare("INSERT INTO t (x) VALUES (?)").bind(1, std::int64_t{i}).run();
                // Many texts, more than are kept.
                (void)other.prepare("SELECT " + std::to_string(i)).step();
            });
        }
        ASSERT_TRUE(std::filesystem::exists(path.string() + "-wal"));
    }
    EXPECT_FALSE(std::filesystem::exists(path.string() + "-wal"));
    Database reopened(path);
    auto count = reopened.prepare("SELECT count(*) FROM t");
    ASSERT_TRUE(count.step());
    EXPECT_EQ(count.integer(0), 200);
}

// SQLite follows a symlink to the database and keeps its WAL beside the
// target; the group sync must sync that file, not one beside the link.
TEST_F(DatabaseTest, GroupCommitWorksThroughASymlinkedPath) {
    const auto [target, link] = linked_database();
    Database linked(link);
    linked.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)");
    EXPECT_NO_THROW(
        linked.transaction([&] { linked.prepare("INSERT INTO t (x) VALUES (1)").run(); }));
    EXPECT_EQ(linked.write_fault(), std::nullopt);
    EXPECT_TRUE(std::filesystem::exists(target.string() + "-wal"));
}

// The WAL is opened for its syncs when the database is: a process out of
// descriptors learns it there, with a clear error, and a database opened
// before goes on committing.
TEST_F(DatabaseTest, OutOfDescriptorsTheOpeningFailsNotTheCommits) {
    rlimit before{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &before), 0);
    rlimit few = before;
    few.rlim_cur = std::min<rlim_t>(before.rlim_cur, 256);
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &few), 0);
    std::vector<int> held;
    for (int fd = ::dup(0); fd >= 0; fd = ::dup(0)) {
        held.push_back(fd);
    }
    std::optional<std::string> refused;
    try {
        Database other(dir.path() / "other.db");
    } catch (const DatabaseError& error) {
        refused = error.what();
    }
    bool committed = true;
    try {
        database.transaction([&] { note("while out of descriptors"); });
    } catch (const DatabaseError&) {
        committed = false;
    }
    for (const int fd : held) {
        ::close(fd);
    }
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &before), 0);
    ASSERT_TRUE(refused.has_value());
    EXPECT_NE(refused->find("other.db"), std::string::npos) << *refused;
    EXPECT_TRUE(committed);
    EXPECT_EQ(database.read([&] { return notes(); }), 1);
    EXPECT_EQ(database.healthy(), std::optional<bool>(true));
}

// Work that fails with a DatabaseError after reading another request's
// commit returns only once that commit is on disk, as any other refusal.
TEST_F(DatabaseTest, DatabaseErrorsWaitForWhatTheySaw) {
    database.execute("INSERT INTO notes (text) VALUES ('unsynced')");
    ASSERT_GT(database.commit_counts().commits, database.commit_counts().durable);
    EXPECT_THROW(database.transaction([&] {
        (void)notes();
        database.prepare("INSERT INTO no_such_table VALUES (1)").run();
    }),
                 DatabaseError);
    const auto counts = database.commit_counts();
    EXPECT_EQ(counts.durable, counts.commits);
}

// SQL with trailing whitespace (a raw string literal ending in a newline)
// is kept under the text SQLite reports, which lacks it; it must still be
// found again and not prepared afresh on every use.
TEST_F(DatabaseTest, KeptStatementsAreFoundForSqlWithTrailingText) {
    for (int i = 0; i < 10; ++i) {
        auto statement = database.prepare("SELECT 42;\n");
        ASSERT_TRUE(statement.step());
    }
    int prepared = 0;
    for (auto* s = sqlite3_next_stmt(database.connection(), nullptr); s != nullptr;
         s = sqlite3_next_stmt(database.connection(), s)) {
        prepared += std::string_view(sqlite3_sql(s)).starts_with("SELECT 42") ? 1 : 0;
    }
    EXPECT_EQ(prepared, 1);
}

// With a stale file beside the link, the sync must still reach the WAL that
// SQLite writes: a descriptor of this process names the target's WAL.
TEST_F(DatabaseTest, GroupCommitSyncsTheWalSqliteWritesNotOneBesideTheLink) {
    const auto [target, link] = linked_database();
    std::ofstream(link.string() + "-wal") << "stale";
    Database linked(link);
    linked.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)");
    linked.transaction([&] { linked.prepare("INSERT INTO t (x) VALUES (1)").run(); });
    int stale = 0;
    for (const auto& fd : std::filesystem::directory_iterator("/proc/self/fd")) {
        std::error_code error;
        const auto names = std::filesystem::read_symlink(fd.path(), error);
        stale += !error && names == std::filesystem::path(link.string() + "-wal") ? 1 : 0;
    }
    EXPECT_EQ(stale, 0) << "the group sync holds the stale WAL beside the link";
}

}  // namespace
}  // namespace otpbox::firmware
