// A disk that fails a sync of the database's WAL, stood in for by a library
// preloaded into otpboxd (tests/syncfault): the request whose commit waited
// for that sync gets 503, and so does every later one until otpboxd
// restarts, since the pages the sync could not write may be gone; health
// and the log say why. After the restart the appliance serves again.

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "dev_instance.hpp"

namespace otpbox::e2e {
namespace {

using namespace std::chrono_literals;

TEST(SyncFault, AFailedSyncIsFinalUntilTheRestart) {
    DevInstance dev(DevInstance::kNotStarted);
    dev.provision();
    dev.start_simulator();
    const auto marker = dev.root() / "sync.fails";
    const auto shim = std::filesystem::path(OTPBOX_BINARY_DIR) / "tests" / "otpbox_sync_fault.so";
    ASSERT_TRUE(std::filesystem::exists(shim)) << shim;
    const std::vector<std::string> env{"LD_PRELOAD=" + shim.string(),
                                       "OTPBOX_SYNC_FAULT_FILE=" + marker.string()};
    dev.start_daemon(true, env);
    ASSERT_EQ(dev.call("POST", "/v1/users/dr.sync/pincards").status, 201);

    test::write_file(marker, "");
    const auto failed = dev.call("POST", "/v1/users/dr.sync/login");
    EXPECT_EQ(failed.status, 503) << failed.body;
    std::filesystem::remove(marker);

    const auto later = dev.call("POST", "/v1/users/dr.sync/login");
    EXPECT_EQ(later.status, 503) << "a sync that failed once is final: " << later.body;
    const auto health = dev.call("GET", "/v1/health", std::nullopt, "monitor");
    EXPECT_EQ(health.status, 503) << health.body;
    EXPECT_NE(health.body.find("a sync failed"), std::string::npos) << health.body;
    EXPECT_TRUE(test::wait_until(
        [&] {
            return test::read_file(dev.daemon_log()).find("event=database_sync_failed") !=
                   std::string::npos;
        },
        10s))
        << test::read_file(dev.daemon_log());

    dev.daemon->stop();
    dev.start_daemon(true, env);
    const auto again = dev.call("POST", "/v1/users/dr.sync/login");
    EXPECT_EQ(again.status, 201) << again.body;
    EXPECT_EQ(dev.call("GET", "/v1/health", std::nullopt, "monitor").status, 200);
}

}  // namespace
}  // namespace otpbox::e2e
