// Group commit's sync: one sync covers every commit counted before it, and a
// failed sync is final.

#include "../../firmware/src/group_sync.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <system_error>

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
    EXPECT_EQ(sync.failure(), std::nullopt);
}

// A file whose sync always fails: Linux's /dev/null has no fsync, so
// fdatasync answers EINVAL. (A disk's EIO cannot be made on demand.)
TEST(GroupSync, AFailedSyncIsFinal) {
    GroupSync sync("/dev/null");
    const auto failure = sync.wait(sync.committed());
    ASSERT_TRUE(failure.has_value());
    EXPECT_NE(failure->find("cannot sync /dev/null"), std::string::npos) << *failure;
    EXPECT_EQ(sync.failure(), failure);
    EXPECT_EQ(sync.syncs(), 1u);

    // Later commits are refused without another try: the pages the failed
    // sync could not write may be gone.
    EXPECT_EQ(sync.wait(sync.committed()), failure);
    EXPECT_EQ(sync.syncs(), 1u);
    EXPECT_EQ(sync.synced(), 0u);
}

TEST(GroupSync, AMissingFileIsRefusedAtTheStart) {
    otpbox::test::TempDir dir;
    EXPECT_THROW(GroupSync(dir.path() / "missing.db-wal"), std::system_error);
}

}  // namespace
}  // namespace otpbox::firmware
