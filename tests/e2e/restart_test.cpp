// otpboxd killed with SIGKILL and started again: an accepted code stays
// used, a queued SMS stays queued, and the audit chain still verifies.

#include <gtest/gtest.h>

#include "dev_instance.hpp"
#include "otpbox/firmware/audit_log.hpp"
#include "otpbox/firmware/config.hpp"
#include "otpbox/firmware/database.hpp"
#include "otpbox/firmware/secrets.hpp"
#include "otpbox/hsm/hsm.hpp"

namespace otpbox::e2e {
namespace {

using namespace std::chrono_literals;

TEST(Restart, AfterSigkillCodesStayUsedSmsStaysQueuedAndTheAuditChainHolds) {
    DevInstance dev(DevInstance::kNotStarted);
    dev.provision();
    dev.replace_in_config("[log]", "[audit]\nanchor_file = \"audit.anchor\"\n\n[log]");
    dev.start_simulator();
    dev.start_daemon();

    const auto card = dev.call("POST", "/v1/users/dr.restart/pincards");
    ASSERT_EQ(card.status, 201) << card.body;
    const auto login = dev.call("POST", "/v1/users/dr.restart/login");
    ASSERT_EQ(login.status, 201) << login.body;
    const auto verify_path = "/v1/challenges/" + login.field("challenge") + "/verify";
    const auto body = "{\"response\": \"" + answer_from_grid(card.json(), login.json()) + "\"}";
    ASSERT_EQ(dev.call("POST", verify_path, body).status, 200);

    // No modem: the OTP's SMS can only wait in the queue.
    dev.simulator->stop();
    ASSERT_EQ(dev.call("PUT", "/v1/users/dr.restart/phone", R"({"number": "0170 7654321"})").status,
              200);
    const auto otp = dev.call("POST", "/v1/users/dr.restart/otp");
    ASSERT_EQ(otp.status, 201) << otp.body;
    const auto sms_path = "/v1/sms/" + otp.field("sms");
    ASSERT_EQ(dev.call("GET", sms_path).field("status"), "queued");

    dev.daemon->kill_hard();
    dev.start_daemon();

    EXPECT_EQ(dev.call("POST", verify_path, body).status, 410) << "the code was used before";
    const auto sms = dev.call("GET", sms_path);
    ASSERT_EQ(sms.status, 200) << sms.body;
    EXPECT_EQ(sms.field("status"), "queued");

    const auto config = firmware::load_config(dev.root() / "otpbox.toml");
    firmware::Database database(config.database);
    firmware::Secrets secrets(hsm::Hsm::open(config.hsm));
    firmware::AuditLog audit(database, secrets);
    const auto verdict = audit.verify(firmware::read_anchor(config.audit_anchor_file));
    EXPECT_TRUE(verdict.intact) << verdict.problem;
    EXPECT_GE(verdict.rows, 4);
}

}  // namespace
}  // namespace otpbox::e2e
