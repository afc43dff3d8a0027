#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "../../firmware/src/instance_lock.hpp"
#include "test_support.hpp"

namespace {

namespace fs = std::filesystem;
using otpbox::firmware::detail::InstanceLock;
using otpbox::firmware::detail::InstanceLockError;

class InstanceLockTest : public ::testing::Test {
  protected:
    void SetUp() override {
        fs::create_directories(m_dir / "data");
        fs::create_directories(m_dir / "elsewhere");
    }

    otpbox::test::TempDir m_temp;
    const fs::path m_dir = m_temp.path();
};

TEST_F(InstanceLockTest, ASecondLockOnTheSameDatabaseIsRefused) {
    const auto database = m_dir / "data" / "otpbox.db";
    const InstanceLock first(InstanceLock::beside(database));
    EXPECT_THROW(InstanceLock second(InstanceLock::beside(database)), InstanceLockError);
}

// A second configuration naming a symlink to the database reaches the same
// database, so it must meet the same lock.
TEST_F(InstanceLockTest, ADatabaseReachedThroughASymlinkMeetsTheSameLock) {
    const auto database = m_dir / "data" / "otpbox.db";
    std::ofstream(database).put('\n');
    const auto link = m_dir / "elsewhere" / "otpbox.db";
    fs::create_symlink(database, link);

    EXPECT_EQ(InstanceLock::beside(link), InstanceLock::beside(database));
    const InstanceLock first(InstanceLock::beside(database));
    EXPECT_THROW(InstanceLock second(InstanceLock::beside(link)), InstanceLockError);
}

TEST_F(InstanceLockTest, ADatabaseNotYetMadeGetsItsLockBesideIt) {
    const auto database = m_dir / "data" / "new.db";
    EXPECT_EQ(InstanceLock::beside(database).filename(), "new.db.lock");
    EXPECT_FALSE(fs::exists(database));
}

}  // namespace
