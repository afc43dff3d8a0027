// The portal's basic flow against a whole appliance, with curl as the
// client: a PINCard login, an SMS OTP login, and an intruder refused.

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "dev_instance.hpp"
#include "otpbox/firmware/database.hpp"

namespace otpbox::e2e {
namespace {

class PortalFlow : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { instance = new DevInstance(); }
    static void TearDownTestSuite() {
        delete instance;
        instance = nullptr;
    }
    static DevInstance* instance;
};

DevInstance* PortalFlow::instance = nullptr;

TEST_F(PortalFlow, PincardLoginAcceptsTheGridOnce) {
    auto& dev = *instance;
    const auto card = dev.call("POST", "/v1/users/e2e.card/pincards");
    ASSERT_EQ(card.status, 201) << card.body;
    EXPECT_EQ(card.field("state"), "pending");

    const auto login = dev.call("POST", "/v1/users/e2e.card/login");
    ASSERT_EQ(login.status, 201) << login.body;
    EXPECT_EQ(login.field("method"), "pincard");
    ASSERT_EQ(login.json().at("cells").as_array().size(), 3u);

    const auto response = answer_from_grid(card.json(), login.json());
    const auto verify_path = "/v1/challenges/" + login.field("challenge") + "/verify";
    const auto body = "{\"response\":\"" + response + "\"}";
    EXPECT_EQ(dev.call("POST", verify_path, body).status, 200);
    EXPECT_EQ(dev.call("POST", verify_path, body).status, 410);

    const auto cards = dev.call("GET", "/v1/users/e2e.card/pincards");
    ASSERT_EQ(cards.status, 200);
    EXPECT_EQ(cards.json().at("pincards").as_array().at(0).as_object().at("state").as_string(),
              "active");
}

TEST_F(PortalFlow, SmsOtpArrivesAndIsAcceptedOnce) {
    auto& dev = *instance;
    const auto phone = dev.call("PUT", "/v1/users/e2e.sms/phone", R"({"number":"0170 7654321"})");
    ASSERT_EQ(phone.status, 200) << phone.body;
    EXPECT_EQ(phone.field("masked"), "+49 170 ****321");

    const auto otp = dev.call("POST", "/v1/users/e2e.sms/otp");
    ASSERT_EQ(otp.status, 201) << otp.body;
    EXPECT_EQ(otp.field("method"), "sms");
    EXPECT_EQ(otp.field("masked"), "+49 170 ****321");
    EXPECT_EQ(otp.body.find("7654321"), std::string::npos);

    const auto code = dev.sms_code("1707654321");
    ASSERT_TRUE(code) << "no SMS in the outbox";
    const auto verify_path = "/v1/challenges/" + otp.field("challenge") + "/verify";

    const auto wrong = dev.call(
        "POST", verify_path,
        std::string("{\"response\":\"") + (*code == "000000" ? "111111" : "000000") + "\"}");
    EXPECT_EQ(wrong.status, 403);
    EXPECT_EQ(wrong.json().at("attempts_left").as_int64(), 4);
    EXPECT_EQ(dev.call("POST", verify_path, "{\"response\":\"" + *code + "\"}").status, 200);
    EXPECT_EQ(dev.call("POST", verify_path, "{\"response\":\"" + *code + "\"}").status, 410);

    const auto sms = dev.call("GET", "/v1/sms/" + otp.field("sms"));
    ASSERT_EQ(sms.status, 200);
    const auto status = sms.field("status");
    EXPECT_TRUE(status == "sent" || status == "delivered") << status;
}

TEST_F(PortalFlow, ClientsOutsideTheTrustAreRefusedAtTheHandshake) {
    auto& dev = *instance;
    EXPECT_EQ(dev.call("GET", "/v1/health", std::nullopt, "intruder").status, 0);
    EXPECT_EQ(dev.call("GET", "/v1/health", std::nullopt, "").status, 0);
    EXPECT_EQ(dev.call("GET", "/v1/health", std::nullopt, "portal").status, 200);
}

// Whether the daemon's database has a row for the user.
bool user_row_exists(const DevInstance& dev, const std::string& user) {
    firmware::Database database(dev.root() / "otpbox.db");
    auto count = database.prepare("SELECT count(*) FROM users WHERE id = ?");
    count.bind(1, user);
    EXPECT_TRUE(count.step());
    return count.integer(0) == 1;
}

// The action and outcome of the audit log's last rows, the latest first.
std::vector<std::string> last_audit_rows(const DevInstance& dev, int count) {
    firmware::Database database(dev.root() / "otpbox.db");
    auto rows = database.prepare("SELECT action, outcome FROM audit ORDER BY seq DESC LIMIT ?");
    rows.bind(1, count);
    std::vector<std::string> found;
    while (rows.step()) {
        found.push_back(rows.text(0) + " " + rows.text(1));
    }
    return found;
}

// A delete is idempotent: one of a user never seen answers 204 too, makes
// no user row, and its audit row says that nothing was there.
TEST_F(PortalFlow, DeletingAUserNeverSeenMakesNoRow) {
    auto& dev = *instance;
    EXPECT_EQ(dev.call("DELETE", "/v1/users/e2e.never.seen").status, 204);
    EXPECT_EQ(dev.call("DELETE", "/v1/users/e2e.never.seen").status, 204);
    EXPECT_EQ(dev.call("DELETE", "/v1/users/e2e.never.seen/phone").status, 204);
    EXPECT_FALSE(user_row_exists(dev, "e2e.never.seen"));
    EXPECT_EQ(last_audit_rows(dev, 3),
              (std::vector<std::string>{"phone.erase unknown", "user.erase unknown",
                                        "user.erase unknown"}));

    // A user the appliance knows is erased as before.
    ASSERT_EQ(dev.call("PUT", "/v1/users/e2e.gone/phone", R"({"number":"0170 2223334"})").status,
              200);
    EXPECT_EQ(dev.call("DELETE", "/v1/users/e2e.gone").status, 204);
    EXPECT_EQ(dev.call("GET", "/v1/users/e2e.gone/phone").status, 404);
    EXPECT_EQ(last_audit_rows(dev, 2),
              (std::vector<std::string>{"user.erase ok", "phone.erase ok"}));
}

// A deleted user's row stays with its lock: a delete does not end a lock.
TEST_F(PortalFlow, DeletingALockedUserKeepsTheLock) {
    auto& dev = *instance;
    const auto card = dev.call("POST", "/v1/users/e2e.locked/pincards");
    ASSERT_EQ(card.status, 201) << card.body;
    int last_status = 0;
    for (int challenge = 0; challenge < 2; ++challenge) {
        const auto login = dev.call("POST", "/v1/users/e2e.locked/login");
        ASSERT_EQ(login.status, 201) << login.body;
        auto wrong = answer_from_grid(card.json(), login.json());
        wrong[0] = wrong[0] == '0' ? '1' : '0';
        for (int i = 0; i < 5; ++i) {
            last_status = dev.call("POST", "/v1/challenges/" + login.field("challenge") + "/verify",
                                   "{\"response\":\"" + wrong + "\"}")
                              .status;
        }
    }
    ASSERT_EQ(last_status, 423);

    EXPECT_EQ(dev.call("DELETE", "/v1/users/e2e.locked").status, 204);
    EXPECT_TRUE(user_row_exists(dev, "e2e.locked"));
    const auto login = dev.call("POST", "/v1/users/e2e.locked/login");
    EXPECT_EQ(login.status, 423) << login.body;
    EXPECT_EQ(login.field("error"), "locked");
    EXPECT_NE(login.headers.find("Retry-After: "), std::string::npos) << login.headers;
}

// The value of a metric in Prometheus text; `name` with its labels, if any.
std::optional<double> metric_value(const std::string& text, const std::string& name) {
    const auto at = text.find("\n" + name + " ");
    if (at == std::string::npos) {
        return std::nullopt;
    }
    return std::stod(text.substr(at + name.size() + 2));
}

TEST_F(PortalFlow, MonitorSeesHealthAndMetricsOnly) {
    auto& dev = *instance;
    const auto health = dev.call("GET", "/v1/health", std::nullopt, "monitor");
    ASSERT_EQ(health.status, 200) << health.body;
    EXPECT_EQ(health.json().at("hsm").as_object().at("ok").as_bool(), true);
    const auto metrics = dev.call("GET", "/metrics", std::nullopt, "monitor");
    EXPECT_EQ(metrics.status, 200);
    EXPECT_NE(metrics.body.find("\notpbox_connections_evicted_total 0\n"), std::string::npos)
        << metrics.body;
    EXPECT_NE(metrics.body.find("otpbox_modem_ready{modem=\"modem0\"}"), std::string::npos)
        << metrics.body;
    // Provisioning committed, and every commit was synced by a shared sync
    // or one of its own.
    const auto commits = metric_value(metrics.body, "otpbox_db_commits_total");
    const auto syncs = metric_value(metrics.body, "otpbox_db_syncs_total");
    ASSERT_TRUE(commits && syncs) << metrics.body;
    EXPECT_GT(*commits, 0);
    EXPECT_GT(*syncs, 0);
    EXPECT_LE(*syncs, *commits);
    // curl keeps no session between runs: this request's own handshake was
    // a full one.
    const auto full = metric_value(metrics.body, "otpbox_tls_handshakes_total{kind=\"full\"}");
    const auto resumed =
        metric_value(metrics.body, "otpbox_tls_handshakes_total{kind=\"resumed\"}");
    ASSERT_TRUE(full && resumed) << metrics.body;
    EXPECT_GE(*full, 2);  // the health call before, and this one
    const auto refused = dev.call("POST", "/v1/users/e2e.mon/login", std::nullopt, "monitor");
    EXPECT_EQ(refused.status, 403);
    EXPECT_EQ(refused.field("error"), "forbidden");
}

TEST_F(PortalFlow, TheLogNamesRoutesNeverWhatTheClientPutInThePath) {
    auto& dev = *instance;
    (void)dev.call("GET", "/v1/users/secret.user/phone");
    (void)dev.call("GET", "/v1//users/other.secret/phone");
    (void)dev.call("GET", "/v1/users/login/phone");
    // A method is the client's word too: HTTP's own are logged, others are "other".
    EXPECT_EQ(dev.call("NOTAVERB4917", "/v1/health").status, 405);
    ASSERT_TRUE(test::wait_until(
        [&] {
            return test::read_file(dev.daemon_log()).find("route=/v1//*/*/phone") !=
                   std::string::npos;
        },
        std::chrono::seconds(5)));
    // Answers the server gives before the router, too.
    EXPECT_EQ(dev.call("PUT", "/v1/users/big.body/phone",
                       "{\"number\":\"" + std::string(20000, '1') + "\"}")
                  .status,
              413);
    ASSERT_TRUE(test::wait_until(
        [&] { return test::read_file(dev.daemon_log()).find("status=413") != std::string::npos; },
        std::chrono::seconds(5)));
    const auto log = test::read_file(dev.daemon_log());
    EXPECT_NE(log.find("route=/v1/users/*/phone"), std::string::npos) << log;
    EXPECT_EQ(log.find("secret"), std::string::npos) << log;
    EXPECT_EQ(log.find("big.body"), std::string::npos) << log;
    EXPECT_EQ(log.find("/v1/users/login"), std::string::npos) << log;
    EXPECT_EQ(log.find("NOTAVERB"), std::string::npos) << log;
    EXPECT_NE(log.find("method=other route=/v1/health status=405"), std::string::npos) << log;
}

// curl asks HEAD of several routes on one connection: each answer has its
// header and no body (RFC 9110 section 9.3.2), so the connection stays in
// step and curl keeps it; a body would make curl drop it as "excess".
TEST_F(PortalFlow, HeadAnswersKeepTheConnectionInStep) {
    auto& dev = *instance;
    ASSERT_EQ(dev.call("PUT", "/v1/users/e2e.head/phone", R"({"number":"0170 5550123"})").status,
              200);
    const auto pki = dev.root() / "pki";
    std::string command = "curl -sS -I --max-time 20 --cacert '" + (pki / "ca.pem").string() +
                          "' --cert '" + (pki / "portal.crt").string() + "' --key '" +
                          (pki / "portal.key").string() +
                          "' -w '%{http_code} %{num_connects} %{size_download}\\n'";
    for (const char* path : {"/v1/users/e2e.head/phone", "/v1/users/e2e.nobody/phone",
                             "/v1/users/e2e.head/login", "/v1/nothing", "/v1/health"}) {
        command += " -o /dev/null '" + dev.url(path) + "'";
    }
    const auto result = test::run_command(command + " 2>&1");
    EXPECT_EQ(result.output, "200 1 0\n404 0 0\n405 0 0\n404 0 0\n200 0 0\n");
}

// Transfer-coding names are case-insensitive (RFC 9112 section 7).
TEST_F(PortalFlow, ChunkedBodyInAnyCaseReachesTheRoute) {
    auto& dev = *instance;
    for (const char* coding : {"chunked", "Chunked", "CHUNKED"}) {
        const auto answer =
            dev.call("PUT", "/v1/users/e2e.chunked/phone", R"({"number":"0170 5550124"})", "portal",
                     std::string("-H 'Transfer-Encoding: ") + coding + "'");
        EXPECT_EQ(answer.status, 200) << coding << ": " << answer.body;
        EXPECT_EQ(answer.field("masked"), "+49 170 ****124") << coding;
    }
}

TEST_F(PortalFlow, BadInputGetsItsErrorAndChangesNothing) {
    auto& dev = *instance;
    ASSERT_EQ(dev.call("PUT", "/v1/users/e2e.bad/phone", R"({"number":"0170 1111111"})").status,
              200);
    struct Case {
        const char* number_json;
        int status;
        const char* error;
    };
    const Case cases[] = {
        {R"({"number":"abc"})", 422, "invalid_number"},
        {R"({"number":"+49"})", 422, "invalid_number"},
        {R"({"number":"1234567890123456789012345678901234567890"})", 422, "invalid_number"},
        {R"({"number":"+33 6 12 34 56 78"})", 422, "country_not_allowed"},
        {R"({"number":491701111111})", 400, "invalid_request"},
        {R"({"number":)", 400, "invalid_request"},
    };
    for (const auto& c : cases) {
        const auto answer = dev.call("PUT", "/v1/users/e2e.bad/phone", c.number_json);
        EXPECT_EQ(answer.status, c.status) << c.number_json;
        EXPECT_EQ(answer.field("error"), c.error) << c.number_json;
    }
    EXPECT_EQ(dev.call("GET", "/v1/users/e2e.bad/phone").field("masked"), "+49 170 ****111");

    EXPECT_EQ(dev.call("PUT", "/v1/users/e2e.bad/phone",
                       "{\"number\":\"" + std::string(17 * 1024, '1') + "\"}")
                  .status,
              413);
    EXPECT_EQ(dev.call("GET", "/v1/no/such/route").status, 404);
    EXPECT_EQ(dev.call("DELETE", "/v1/users/e2e.bad/login").status, 405);
    EXPECT_EQ(dev.call("PUT", "/v1/users/e2e.bad/phone", std::nullopt, "portal",
                       "-H 'Content-Type: text/plain' --data 'number'")
                  .status,
              415);
    const auto login = dev.call("POST", "/v1/users/e2e.bad/otp");
    ASSERT_EQ(login.status, 201);
    const auto verify = dev.call("POST", "/v1/challenges/" + login.field("challenge") + "/verify",
                                 R"({"response":"12ab56"})");
    EXPECT_EQ(verify.status, 400);
    EXPECT_EQ(verify.field("error"), "invalid_response");
}

}  // namespace
}  // namespace otpbox::e2e
