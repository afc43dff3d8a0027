// The API contract at the router: statuses, error codes and fields of every
// answer, without the TLS transport (tests/e2e drives the same through curl).

#include "otpbox/firmware/router.hpp"

#include <gtest/gtest.h>

#include <array>
#include <thread>

#include <boost/json.hpp>

#include "service_fixture.hpp"

namespace otpbox::firmware {
namespace {

using boost::beast::http::verb;
using testing::kActor;
using testing::ServiceFixture;

class RouterTest : public ::testing::Test {
  protected:
    RouterTest()
        : idempotency(*f.context),
          router(RouterParts{*f.context, *f.phones, *f.cards, *f.challenges, idempotency,
                             [] {
                                 return HealthReport{200, boost::json::object{{"status", "ok"}}};
                             },
                             [] { return std::string("otpbox_up 1\n"); },
                             [this](const std::string& user, const std::string& actor) {
                                 f.database->transaction([&] {
                                     f.phones->erase(user, actor);
                                     f.cards->revoke_all(user, actor);
                                 });
                             }}) {}

    api::Response call(verb method, const std::string& target, const std::string& body = "",
                       api::Role role = api::Role::portal, const std::string& key = "") {
        api::Request request;
        request.method = method;
        request.method_name = std::string(boost::beast::http::to_string(method));
        request.target = target;
        request.body = body;
        request.has_body = !body.empty();
        request.content_type = body.empty() ? "" : "application/json";
        request.client_subject = kActor;
        request.role = role;
        if (!key.empty()) {
            request.idempotency_key = key;
        }
        return router.handle(request);
    }

    static std::string serial_of(const api::Response& response) {
        return std::string(boost::json::parse(response.body).at("serial").as_string());
    }

    static std::string error_of(const api::Response& response) {
        return std::string(boost::json::parse(response.body).at("error").as_string());
    }

    static std::string header(const api::Response& response, const std::string& name) {
        for (const auto& [key, value] : response.headers) {
            if (key == name) {
                return value;
            }
        }
        return "";
    }

    ServiceFixture f;
    Idempotency idempotency;
    Router router;
};

TEST_F(RouterTest, PhoneAnswers) {
    auto answer = call(verb::get, "/v1/users/alice/phone");
    EXPECT_EQ(answer.status, 404u);
    EXPECT_EQ(error_of(answer), "no_phone");

    answer = call(verb::put, "/v1/users/alice/phone", R"({"number":"(0170) 123-4567"})");
    EXPECT_EQ(answer.status, 200u);
    EXPECT_EQ(boost::json::parse(answer.body).at("masked").as_string(), "+49 170 ****567");
    EXPECT_EQ(call(verb::get, "/v1/users/alice/phone").status, 200u);
    EXPECT_EQ(call(verb::delete_, "/v1/users/alice/phone").status, 204u);
    EXPECT_EQ(call(verb::get, "/v1/users/alice/phone").status, 404u);
}

TEST_F(RouterTest, MalformedBodiesAre400AndWrongTypesToo) {
    EXPECT_EQ(call(verb::put, "/v1/users/alice/phone", "{").status, 400u);
    EXPECT_EQ(call(verb::put, "/v1/users/alice/phone", "[1,2]").status, 400u);
    EXPECT_EQ(call(verb::put, "/v1/users/alice/phone", R"({"number":5})").status, 400u);
    EXPECT_EQ(call(verb::put, "/v1/users/alice/phone", R"({"digits":"0170"})").status, 400u);
    EXPECT_EQ(call(verb::put, "/v1/users/alice/phone").status, 400u);
}

// Read first-wins elsewhere and last-wins here, a repeated field could pass
// the portal's checks with one value and reach the appliance with another.
TEST_F(RouterTest, BodyNamingAFieldTwiceIs400AndChangesNothing) {
    for (const auto* body : {R"({"number":"0170 1234567","number":"garbage"})",
                             R"({"number":"garbage","number":"0170 1234567"})",
                             R"({"number":"0170 1234567","\u006eumber":"0171 7654321"})"}) {
        const auto answer = call(verb::put, "/v1/users/alice/phone", body);
        EXPECT_EQ(answer.status, 400u) << body;
        EXPECT_EQ(error_of(answer), "invalid_request") << body;
        EXPECT_EQ(boost::json::parse(answer.body).at("message").as_string(),
                  "the body names a field twice");
    }
    EXPECT_EQ(call(verb::get, "/v1/users/alice/phone").status, 404u);
}

TEST_F(RouterTest, UnknownRouteWrongMethodAndBadUserId) {
    EXPECT_EQ(call(verb::get, "/v1/nothing").status, 404u);
    EXPECT_EQ(call(verb::get, "/").status, 404u);
    EXPECT_EQ(call(verb::get, "/v1/users/alice/login").status, 405u);
    EXPECT_EQ(call(verb::post, "/v1/health").status, 405u);
    EXPECT_EQ(header(call(verb::post, "/v1/health"), "Allow"), "GET, HEAD");
    EXPECT_EQ(header(call(verb::patch, "/v1/users/alice/phone"), "Allow"),
              "PUT, GET, HEAD, DELETE");
    EXPECT_EQ(call(verb::get, "/v1/users/" + std::string(65, 'a') + "/phone").status, 400u);
    EXPECT_EQ(call(verb::get, "/v1/users/al%20ice/phone").status, 400u);
    // Dot segments would be removed by clients on the way; other ids with
    // dots are ordinary.
    EXPECT_EQ(call(verb::get, "/v1/users/./phone").status, 400u);
    EXPECT_EQ(call(verb::get, "/v1/users/../phone").status, 400u);
    EXPECT_EQ(call(verb::get, "/v1/users/.../phone").status, 404u);
    EXPECT_EQ(call(verb::get, "/v1/users/dr.who/phone").status, 404u);
}

// RFC 9110 section 9.3.2: HEAD gets what GET would get (the connection
// leaves out the body), errors included.
TEST_F(RouterTest, HeadIsAnsweredAsGetWouldBe) {
    (void)call(verb::put, "/v1/users/alice/phone", R"({"number":"0170 1234567"})");
    const auto get = call(verb::get, "/v1/users/alice/phone");
    const auto head = call(verb::head, "/v1/users/alice/phone");
    EXPECT_EQ(head.status, 200u);
    EXPECT_EQ(head.body, get.body);
    EXPECT_EQ(call(verb::head, "/v1/users/bob/phone").status, 404u);
    EXPECT_EQ(call(verb::head, "/v1/nothing").status, 404u);
    EXPECT_EQ(call(verb::head, "/v1/health", "", api::Role::monitor).status, 200u);
    EXPECT_EQ(call(verb::head, "/metrics", "", api::Role::monitor).body, "otpbox_up 1\n");

    const auto wrong = call(verb::head, "/v1/users/alice/login");
    EXPECT_EQ(wrong.status, 405u);
    EXPECT_EQ(header(wrong, "Allow"), "POST");
    EXPECT_NE(wrong.body.find("HEAD is not allowed"), std::string::npos) << wrong.body;
    EXPECT_EQ(call(verb::head, "/v1/users/alice/phone", "", api::Role::monitor).status, 403u);

    f.stepped->report_health(hsm::HsmHealth{false, "token_gone", "CKR_DEVICE_REMOVED"});
    const auto away = call(verb::head, "/v1/users/alice/phone");
    EXPECT_EQ(away.status, 503u);
    EXPECT_EQ(header(away, "Retry-After"), "5");
    f.stepped->report_health(std::nullopt);
}

TEST_F(RouterTest, WrongContentTypeIs415) {
    api::Request request;
    request.method = verb::put;
    request.method_name = "PUT";
    request.target = "/v1/users/alice/phone";
    request.body = R"({"number":"0170 1234567"})";
    request.has_body = true;
    request.content_type = "text/plain";
    request.client_subject = kActor;
    EXPECT_EQ(router.handle(request).status, 415u);
    request.content_type = "application/json; charset=utf-8";
    EXPECT_EQ(router.handle(request).status, 200u);
}

TEST_F(RouterTest, MonitorReachesOnlyHealthAndMetrics) {
    EXPECT_EQ(call(verb::get, "/v1/health", "", api::Role::monitor).status, 200u);
    EXPECT_EQ(call(verb::get, "/metrics", "", api::Role::monitor).status, 200u);
    const auto refused = call(verb::post, "/v1/users/alice/login", "", api::Role::monitor);
    EXPECT_EQ(refused.status, 403u);
    EXPECT_EQ(error_of(refused), "forbidden");
}

TEST_F(RouterTest, LoginWithoutSecondFactorNamesFallbacks) {
    const auto answer = call(verb::post, "/v1/users/alice/login");
    EXPECT_EQ(answer.status, 409u);
    const auto body = boost::json::parse(answer.body);
    EXPECT_EQ(body.at("error").as_string(), "no_second_factor");
    EXPECT_EQ(body.at("fallbacks").as_array().size(), 2u);
    EXPECT_EQ(call(verb::post, "/v1/users/alice/otp").status, 409u);
}

TEST_F(RouterTest, CardCallsAnswerAsTheContractSays) {
    const auto issued = call(verb::post, "/v1/users/alice/pincards");
    ASSERT_EQ(issued.status, 201u);
    const auto card = boost::json::parse(issued.body);
    const std::string serial(card.at("serial").as_string());
    EXPECT_EQ(card.at("grid").as_array().size(), 8u);
    EXPECT_EQ(card.at("columns").as_int64(), 8);

    auto answer = call(verb::post, "/v1/pincards/" + serial + "/block", R"({"reason":"lost"})");
    EXPECT_EQ(answer.status, 200u);
    EXPECT_EQ(boost::json::parse(answer.body).at("state").as_string(), "blocked");
    answer = call(verb::post, "/v1/pincards/" + serial + "/block");
    EXPECT_EQ(answer.status, 409u);
    EXPECT_EQ(error_of(answer), "invalid_state");
    EXPECT_EQ(boost::json::parse(answer.body).at("message").as_string(),
              "a blocked card cannot be blocked");
    answer = call(verb::post, "/v1/pincards/" + serial + "/unblock");
    EXPECT_EQ(boost::json::parse(answer.body).at("state").as_string(), "pending");
    answer = call(verb::post, "/v1/pincards/" + serial + "/unblock");
    EXPECT_EQ(boost::json::parse(answer.body).at("message").as_string(),
              "a pending card cannot be unblocked");
    answer = call(verb::post, "/v1/pincards/unknown-serial/revoke");
    EXPECT_EQ(answer.status, 404u);
    EXPECT_EQ(error_of(answer), "unknown_card");

    const auto login = boost::json::parse(call(verb::post, "/v1/users/alice/login").body);
    EXPECT_EQ(login.at("method").as_string(), "pincard");
    EXPECT_EQ(login.at("cells").as_array().size(), 3u);
    const std::string challenge(login.at("challenge").as_string());
    answer = call(verb::post, "/v1/challenges/" + challenge + "/verify", R"({"response":"ab"})");
    EXPECT_EQ(answer.status, 400u);
    EXPECT_EQ(error_of(answer), "invalid_response");
    answer = call(verb::post, "/v1/challenges/nope/verify", R"({"response":"123456"})");
    EXPECT_EQ(answer.status, 410u);
}

TEST_F(RouterTest, IdempotencyKeyReturnsTheFirstCardAndIssuesNoSecond) {
    const auto first = call(verb::post, "/v1/users/alice/pincards", "", api::Role::portal, "k-1");
    const auto again = call(verb::post, "/v1/users/alice/pincards", "", api::Role::portal, "k-1");
    EXPECT_EQ(first.status, 201u);
    EXPECT_EQ(again.status, 201u);
    EXPECT_EQ(serial_of(first), serial_of(again));
    EXPECT_EQ(header(again, "Idempotent-Replayed"), "true");
    // The grid leaves once: the replay names the card but withholds it.
    const auto replay = boost::json::parse(again.body).as_object();
    EXPECT_FALSE(replay.contains("grid"));
    EXPECT_EQ(replay.at("grid_withheld").as_bool(), true);
    auto kept = f.database->prepare("SELECT body FROM idempotency");
    ASSERT_TRUE(kept.step());
    EXPECT_EQ(kept.text(0).find("grid\":["), std::string::npos) << kept.text(0);
    EXPECT_EQ(f.cards->list("alice").size(), 1u);
    (void)call(verb::post, "/v1/users/alice/pincards", "", api::Role::portal, "k-2");
    EXPECT_EQ(f.cards->list("alice").size(), 2u);
}

TEST_F(RouterTest, OneIdempotencyKeyArrivingTwiceAtOnceIssuesOneCard) {
    for (int round = 0; round < 20; ++round) {
        const auto key = "race-" + std::to_string(round);
        std::array<api::Response, 2> answers;
        std::vector<std::thread> threads;
        for (std::size_t i = 0; i < answers.size(); ++i) {
            threads.emplace_back([&, i] {
                answers[i] = call(verb::post, "/v1/users/bob/pincards", "", api::Role::portal, key);
            });
        }
        for (auto& thread : threads) {
            thread.join();
        }
        ASSERT_EQ(answers[0].status, 201u);
        ASSERT_EQ(answers[1].status, 201u);
        EXPECT_EQ(serial_of(answers[0]), serial_of(answers[1]));
        ASSERT_EQ(f.cards->list("bob").size(), static_cast<std::size_t>(round + 1));
    }
}

// A kept answer that cannot be written (here a trigger refuses it) takes
// the work with it, as a crash between the two would: the client gets 503
// and its retry does the work once.
class RouterKeepFailsTest : public RouterTest {
  protected:
    void refuse_keeping() {
        f.database->execute(
            "CREATE TEMP TRIGGER refuse_keep BEFORE INSERT ON idempotency "
            "BEGIN SELECT RAISE(ABORT, 'keeping answers fails'); END");
    }
    void allow_keeping() { f.database->execute("DROP TRIGGER refuse_keep"); }
};

TEST_F(RouterKeepFailsTest, NoCardIsIssuedWhenItsAnswerCannotBeKept) {
    refuse_keeping();
    const auto failed = call(verb::post, "/v1/users/alice/pincards", "", api::Role::portal, "k-1");
    EXPECT_EQ(failed.status, 503u);
    EXPECT_EQ(header(failed, "Retry-After"), "5");
    EXPECT_TRUE(f.cards->list("alice").empty());

    allow_keeping();
    const auto retried = call(verb::post, "/v1/users/alice/pincards", "", api::Role::portal, "k-1");
    EXPECT_EQ(retried.status, 201u);
    EXPECT_EQ(header(retried, "Idempotent-Replayed"), "");
    EXPECT_EQ(f.cards->list("alice").size(), 1u);
}

TEST_F(RouterKeepFailsTest, NoSmsIsQueuedWhenItsAnswerCannotBeKept) {
    ASSERT_EQ(call(verb::put, "/v1/users/alice/phone", R"({"number":"+491701234567"})").status,
              200u);
    refuse_keeping();
    EXPECT_EQ(call(verb::post, "/v1/users/alice/otp", "", api::Role::portal, "otp-1").status, 503u);
    EXPECT_EQ(f.queue->stats().depth, 0u);

    allow_keeping();
    const auto retried = call(verb::post, "/v1/users/alice/otp", "", api::Role::portal, "otp-1");
    EXPECT_EQ(retried.status, 201u);
    EXPECT_EQ(f.queue->stats().depth, 1u);
    const auto replayed = call(verb::post, "/v1/users/alice/otp", "", api::Role::portal, "otp-1");
    EXPECT_EQ(header(replayed, "Idempotent-Replayed"), "true");
    EXPECT_EQ(f.queue->stats().depth, 1u);
}

TEST_F(RouterTest, AnEmptyIdempotencyKeyIsRefusedAndDoesNothing) {
    api::Request request;
    request.method = verb::post;
    request.method_name = "POST";
    request.target = "/v1/users/alice/pincards";
    request.client_subject = kActor;
    request.role = api::Role::portal;
    request.idempotency_key = "";  // "Idempotency-Key:" with no value
    const auto answer = router.handle(request);
    EXPECT_EQ(answer.status, 400u);
    EXPECT_EQ(error_of(answer), "invalid_request");
    EXPECT_TRUE(f.cards->list("alice").empty());
}

TEST_F(RouterTest, ReadingAPhoneMakesNoUser) {
    for (const auto* user : {"never.seen", "...", "x"}) {
        const auto answer = call(verb::get, std::string("/v1/users/") + user + "/phone");
        EXPECT_EQ(answer.status, 404u);
        EXPECT_EQ(error_of(answer), "no_phone");
    }
    auto users = f.database->prepare("SELECT count(*) FROM users");
    ASSERT_TRUE(users.step());
    EXPECT_EQ(users.integer(0), 0);
}

TEST_F(RouterTest, AKeyComesBackOnlyWithTheSameRequest) {
    ASSERT_EQ(call(verb::post, "/v1/users/bob/pincards", "", api::Role::portal, "k-9").status,
              201u);
    // Another user, another route: refused, and nothing is done.
    auto answer = call(verb::post, "/v1/users/carol/pincards", "", api::Role::portal, "k-9");
    EXPECT_EQ(answer.status, 422u);
    EXPECT_EQ(error_of(answer), "idempotency_key_reused");
    EXPECT_TRUE(f.cards->list("carol").empty());

    // A right answer with a key, then a wrong one with the same key: the
    // wrong one is not taken for the first.
    (void)call(verb::post, "/v1/users/dave/pincards");
    const auto login = boost::json::parse(call(verb::post, "/v1/users/dave/login").body);
    const auto path =
        "/v1/challenges/" + std::string(login.at("challenge").as_string()) + "/verify";
    answer = call(verb::post, path, R"({"response":"999999"})", api::Role::portal, "v-1");
    EXPECT_EQ(answer.status, 403u);
    answer = call(verb::post, path, R"({"response":"000000"})", api::Role::portal, "v-1");
    EXPECT_EQ(answer.status, 422u);
    EXPECT_EQ(error_of(answer), "idempotency_key_reused");

    answer =
        call(verb::post, "/v1/users/erin/pincards", "", api::Role::portal, std::string(256, 'k'));
    EXPECT_EQ(answer.status, 400u);
    answer = call(verb::post, "/v1/users/erin/pincards", "", api::Role::portal, "a b");
    EXPECT_EQ(answer.status, 400u);
    EXPECT_TRUE(f.cards->list("erin").empty());
}

TEST_F(RouterTest, LockedLoginCarriesRetryAfter) {
    (void)call(verb::post, "/v1/users/alice/pincards");
    for (int i = 0; i < 2; ++i) {
        const auto login = boost::json::parse(call(verb::post, "/v1/users/alice/login").body);
        const std::string challenge(login.at("challenge").as_string());
        for (int j = 0; j < 5; ++j) {
            (void)call(verb::post, "/v1/challenges/" + challenge + "/verify",
                       R"({"response":"999999"})");
        }
    }
    const auto answer = call(verb::post, "/v1/users/alice/login");
    EXPECT_EQ(answer.status, 423u);
    EXPECT_EQ(error_of(answer), "locked");
    EXPECT_EQ(header(answer, "Retry-After"), "900");
}

TEST_F(RouterTest, CallsThatNeedNoHsmWorkAre503WhileTheHsmIsAway) {
    (void)call(verb::put, "/v1/users/alice/phone", R"({"number":"0170 1234567"})");
    (void)call(verb::post, "/v1/users/alice/pincards");
    const auto otp = boost::json::parse(call(verb::post, "/v1/users/alice/otp").body);
    const std::string sms(otp.at("sms").as_string());

    f.stepped->report_health(
        hsm::HsmHealth{false, "token_gone", "C_OpenSession failed: CKR_DEVICE_REMOVED"});
    for (const auto* target :
         {"/v1/users/alice/phone", "/v1/users/alice/pincards", "/v1/users/nobody/phone"}) {
        const auto answer = call(verb::get, target);
        EXPECT_EQ(answer.status, 503u) << target;
        EXPECT_EQ(error_of(answer), "unavailable") << target;
        EXPECT_EQ(header(answer, "Retry-After"), "5") << target;
    }
    EXPECT_EQ(call(verb::get, "/v1/sms/" + sms).status, 503u);
    // The client's own fault is said first.
    EXPECT_EQ(call(verb::get, "/v1/users/../phone").status, 400u);
    EXPECT_EQ(call(verb::get, "/v1/health").status, 200u);
    EXPECT_EQ(call(verb::get, "/metrics").status, 200u);

    f.stepped->report_health(hsm::HsmHealth{false, "stalled", "1 call(s) overran"});
    EXPECT_EQ(call(verb::get, "/v1/users/alice/phone").status, 503u);

    f.stepped->report_health(std::nullopt);
    EXPECT_EQ(call(verb::get, "/v1/users/alice/phone").status, 200u);
    EXPECT_EQ(call(verb::get, "/v1/sms/" + sms).status, 200u);
}

TEST_F(RouterTest, DeletingAUserRevokesCardsAndErasesThePhone) {
    (void)call(verb::put, "/v1/users/alice/phone", R"({"number":"0170 1234567"})");
    (void)call(verb::post, "/v1/users/alice/pincards");
    EXPECT_EQ(call(verb::delete_, "/v1/users/alice").status, 204u);
    EXPECT_EQ(call(verb::get, "/v1/users/alice/phone").status, 404u);
    const auto cards = boost::json::parse(call(verb::get, "/v1/users/alice/pincards").body);
    EXPECT_EQ(cards.at("pincards").as_array().at(0).at("state").as_string(), "revoked");
}

TEST_F(RouterTest, ErasingANumberStopsTheSmsStillWaitingForAModem) {
    (void)call(verb::put, "/v1/users/alice/phone", R"({"number":"0170 1234567"})");
    const auto otp = boost::json::parse(call(verb::post, "/v1/users/alice/otp").body);
    const std::string sms(otp.at("sms").as_string());
    ASSERT_EQ(f.queue->stats().depth, 1u);

    EXPECT_EQ(call(verb::delete_, "/v1/users/alice").status, 204u);
    EXPECT_EQ(f.queue->stats().depth, 0u);
    const auto record = f.queue->find(sms);
    ASSERT_TRUE(record);
    EXPECT_EQ(record->status, gsm::SmsStatus::failed);
    EXPECT_NE(record->failure.find("erased"), std::string::npos) << record->failure;
    auto payload = f.database->prepare("SELECT payload IS NULL FROM sms_messages WHERE id = ?");
    payload.bind(1, sms);
    ASSERT_TRUE(payload.step());
    EXPECT_EQ(payload.integer(0), 1) << "the sealed number and text are erased";
    EXPECT_EQ(call(verb::get, "/v1/sms/" + sms).status, 200u);
}

}  // namespace
}  // namespace otpbox::firmware
