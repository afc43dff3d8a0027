// Group commit's sync: one sync covers every commit counted before it, and a
// failed sync is final.

#include "../../firmware/src/group_sync.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "test_support.hpp"

namespace otpbox::firmware {
namespace {

TEST(GroupSync, OneSyncCoversEveryCommitBeforeIt) {
    otpbox::test::TempDir dir;
    const auto wal = dir.path() / "store.db-wal";
    std::ofstream(wal) << "frames";
    GroupSync sync(wal);

    EXPECT_EQ(sync.wait(0), std::nullopt);
    EXPECT_EQ(sync.syncs(), 0u) << "nothing committed, nothing to sync";

    (void)sync.committed();
    (void)sync.committed();
    const auto third = sync.committed();
    EXPECT_EQ(sync.wait(third), std::nullopt);
    EXPECT_EQ(sync.syncs(), 1u);
    EXPECT_EQ(sync.synced(), 3u);

    EXPECT_EQ(sync.wait(2), std::nullopt);
    EXPECT_EQ(sync.syncs(), 1u) << "an earlier commit is covered already";

    EXPECT_EQ(sync.wait(sync.committed()), std::nullopt);
    EXPECT_EQ(sync.syncs(), 2u);
    EXPECT_FALSE(sync.failed());
}

TEST(GroupSync, AFailedSyncIsFinal) {
    otpbox::test::TempDir dir;
    const auto wal = dir.path() / "missing.db-wal";
    GroupSync sync(wal);

    const auto failure = sync.wait(sync.committed());
    ASSERT_TRUE(failure.has_value());
    EXPECT_NE(failure->find("missing.db-wal"), std::string::npos) << *failure;
    EXPECT_TRUE(sync.failed());

    // The file appearing now does not prove the commits before.
    std::ofstream(wal) << "frames";
    EXPECT_TRUE(sync.wait(sync.committed()).has_value());
    EXPECT_EQ(sync.synced(), 0u);
}

}  // namespace
}  // namespace otpbox::firmware
