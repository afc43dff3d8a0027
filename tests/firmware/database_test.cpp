// Transactions of the firmware's store: nested work runs in a savepoint,
// actions wait for the outermost commit, and failing writes show in health.

#include "otpbox/firmware/database.hpp"

#include <gtest/gtest.h>

#include <future>
#include <stdexcept>
#include <thread>

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

}  // namespace
}  // namespace otpbox::firmware
