// The daemon's status file as the console reads it: fresh and alive is
// running; alive but stale is a daemon whose own work is held up; a pid that
// names no process is a daemon that has gone.

#include "otpbox/firmware/status_file.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <chrono>

#include "test_support.hpp"

namespace otpbox::firmware {
namespace {

using otpbox::test::TempDir;

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// The file as a daemon of that pid would have written it `age` seconds ago.
void write_as(const std::filesystem::path& file, std::int64_t pid, std::int64_t age) {
    boost::json::object body{{"pid", pid}, {"written_at", unix_now() - age}};
    otpbox::test::write_file(file, boost::json::serialize(body));
}

TEST(StatusFile, FreshFromALiveDaemonIsRunning) {
    TempDir dir;
    const auto file = dir.path() / "otpboxd.status.json";
    write_status_file(file, boost::json::object{{"provisioned", true}});
    const auto status = read_status_file(file);
    ASSERT_TRUE(status);
    EXPECT_TRUE(status->alive);
    EXPECT_TRUE(status->running);
    EXPECT_EQ(status->body.at("provisioned").as_bool(), true);
}

TEST(StatusFile, StaleFromALiveDaemonIsAliveButNotRunning) {
    TempDir dir;
    const auto file = dir.path() / "otpboxd.status.json";
    write_as(file, ::getpid(), 30);
    const auto status = read_status_file(file);
    ASSERT_TRUE(status);
    EXPECT_TRUE(status->alive);
    EXPECT_FALSE(status->running);
    EXPECT_GE(status->age, std::chrono::seconds(30));
}

TEST(StatusFile, FreshFromAGoneDaemonIsNeither) {
    TempDir dir;
    const auto file = dir.path() / "otpboxd.status.json";
    const pid_t child = ::fork();
    if (child == 0) {
        ::_exit(0);
    }
    ASSERT_GT(child, 0);
    int ended = 0;
    ASSERT_EQ(::waitpid(child, &ended, 0), child);
    write_as(file, child, 0);
    const auto status = read_status_file(file);
    ASSERT_TRUE(status);
    EXPECT_FALSE(status->alive);
    EXPECT_FALSE(status->running);
}

}  // namespace
}  // namespace otpbox::firmware
