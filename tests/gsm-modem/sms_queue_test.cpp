// The durable SMS queue on a real SQLite file, with a test sealer.

#include <sqlite3.h>

#include <gtest/gtest.h>
#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "../../gsm-modem/src/sms_queue_impl.hpp"
#include "otpbox/gsm/sms_queue.hpp"
#include "test_support.hpp"

namespace otpbox::gsm {
namespace {

using namespace std::chrono_literals;

// Not encryption: a XOR mask, bound to the id, so that the tests see the
// queue never stores the clear text and refuses a blob under another id.
class XorSealer final : public Sealer {
  public:
    std::vector<std::uint8_t> seal(std::string_view plaintext, std::string_view id) override {
        std::vector<std::uint8_t> blob(id.begin(), id.end());
        blob.push_back(0);
        for (const char c : plaintext) {
            blob.push_back(static_cast<std::uint8_t>(c) ^ 0x5a);
        }
        return blob;
    }
    std::optional<std::string> open(std::span<const std::uint8_t> sealed,
                                    std::string_view id) override {
        if (sealed.size() <= id.size() || !std::equal(id.begin(), id.end(), sealed.begin()) ||
            sealed[id.size()] != 0) {
            return std::nullopt;
        }
        std::string plaintext;
        for (const auto byte : sealed.subspan(id.size() + 1)) {
            plaintext.push_back(static_cast<char>(byte ^ 0x5a));
        }
        return plaintext;
    }
};

// Opens as XorSealer does once the test lets it, or throws as an HSM that
// went away does: the stand-in for a token that keeps a call, in a test of
// the queue alone (tests/e2e has the real token stalling).
class HeldSealer final : public Sealer {
  public:
    enum class Outcome { wait, open, fail };

    std::vector<std::uint8_t> seal(std::string_view plaintext, std::string_view id) override {
        return XorSealer().seal(plaintext, id);
    }
    std::optional<std::string> open(std::span<const std::uint8_t> sealed,
                                    std::string_view id) override {
        std::unique_lock lock(m_mutex);
        m_opening = true;
        m_changed.notify_all();
        m_changed.wait(lock, [&] { return m_outcome != Outcome::wait; });
        m_opening = false;
        if (std::exchange(m_outcome, Outcome::wait) == Outcome::fail) {
            throw std::runtime_error("the HSM is gone");
        }
        return XorSealer().open(sealed, id);
    }

    [[nodiscard]] bool opening_within(std::chrono::milliseconds limit) {
        std::unique_lock lock(m_mutex);
        return m_changed.wait_for(lock, limit, [&] { return m_opening; });
    }
    void let(Outcome outcome) {
        const std::lock_guard lock(m_mutex);
        m_outcome = outcome;
        m_changed.notify_all();
    }

  private:
    std::mutex m_mutex;
    std::condition_variable m_changed;
    bool m_opening = false;
    Outcome m_outcome = Outcome::wait;
};

// A clock the test moves by hand.
struct ManualClock {
    std::atomic<std::int64_t> ms{1'800'000'000'000};
    Clock clock() {
        return [this] { return TimePoint(std::chrono::milliseconds(ms.load())); };
    }
    TimePoint now() const { return TimePoint(std::chrono::milliseconds(ms.load())); }
    void advance(std::chrono::milliseconds by) { ms += by.count(); }
};

constexpr std::string_view kNumber = "+491701234567";

class SmsQueue_Durable : public ::testing::Test {
  protected:
    std::filesystem::path db() const { return m_dir.path() / "otpbox.db"; }
    std::unique_ptr<SmsQueue> open_queue() {
        return std::make_unique<SmsQueue>(db(), std::make_shared<XorSealer>(), m_clock.clock());
    }
    OutgoingSms sms(std::string id, std::chrono::seconds validity = 600s) {
        return {std::move(id), std::string(kNumber), "Ihr Anmeldecode: 123456.",
                m_clock.now() + validity};
    }
    // The payload column as stored, through a connection of the test's own.
    std::optional<std::vector<std::uint8_t>> stored_payload(const std::string& id) {
        sqlite3* raw = nullptr;
        EXPECT_EQ(sqlite3_open(db().c_str(), &raw), SQLITE_OK);
        sqlite3_stmt* statement = nullptr;
        sqlite3_prepare_v2(raw, "SELECT payload FROM sms_messages WHERE id = ?1", -1, &statement,
                           nullptr);
        sqlite3_bind_text(statement, 1, id.c_str(), -1, SQLITE_TRANSIENT);
        std::optional<std::vector<std::uint8_t>> payload;
        if (sqlite3_step(statement) == SQLITE_ROW &&
            sqlite3_column_type(statement, 0) != SQLITE_NULL) {
            const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(statement, 0));
            payload.emplace(data, data + sqlite3_column_bytes(statement, 0));
        }
        sqlite3_finalize(statement);
        sqlite3_close(raw);
        return payload;
    }

    test::TempDir m_dir;
    ManualClock m_clock;
};

TEST_F(SmsQueue_Durable, EnqueuedSmsSurvivesReopen) {
    open_queue()->enqueue(sms("sms-1"));

    const auto record = open_queue()->find("sms-1");

    ASSERT_TRUE(record.has_value());
    EXPECT_EQ(record->status, SmsStatus::queued);
    EXPECT_EQ(record->expires_at, m_clock.now() + 600s);
}

TEST_F(SmsQueue_Durable, NeverStoresRecipientOrTextInClear) {
    auto queue = open_queue();
    queue->enqueue(sms("sms-1"));

    for (const char* suffix : {"", "-wal"}) {
        const auto bytes = test::read_file(db().string() + suffix);
        EXPECT_EQ(bytes.find(kNumber), std::string::npos) << suffix;
        EXPECT_EQ(bytes.find("123456"), std::string::npos) << suffix;
    }
    EXPECT_TRUE(stored_payload("sms-1").has_value());
}

TEST_F(SmsQueue_Durable, ClaimOpensThePayload) {
    auto queue = open_queue();
    queue->enqueue(sms("sms-1"));

    const auto claimed = queue->impl().claim("modem0");

    ASSERT_TRUE(claimed.has_value());
    EXPECT_EQ(claimed->id, "sms-1");
    EXPECT_EQ(claimed->to, kNumber);
    EXPECT_EQ(claimed->text, "Ihr Anmeldecode: 123456.");
    EXPECT_EQ(claimed->attempts, 1);
    EXPECT_EQ(queue->find("sms-1")->status, SmsStatus::sending);
    EXPECT_EQ(status_name(SmsStatus::sending), "queued");
    EXPECT_FALSE(queue->impl().claim("modem1").has_value());
}

TEST_F(SmsQueue_Durable, SendingGoesBackToQueuedOnReopen) {
    {
        auto queue = open_queue();
        queue->enqueue(sms("sms-1"));
        ASSERT_TRUE(queue->impl().claim("modem0").has_value());
    }

    auto queue = open_queue();
    EXPECT_EQ(queue->find("sms-1")->status, SmsStatus::queued);
    const auto again = queue->impl().claim("modem1");
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->attempts, 2);
}

TEST_F(SmsQueue_Durable, SentIsNeverClaimedAgainAndItsPayloadIsWiped) {
    {
        auto queue = open_queue();
        queue->enqueue(sms("sms-1"));
        ASSERT_TRUE(queue->impl().claim("modem0").has_value());
        queue->impl().record_part("sms-1", "modem0", 0, 1, 77);
    }

    auto queue = open_queue();
    const auto record = queue->find("sms-1");
    EXPECT_EQ(record->status, SmsStatus::sent);
    EXPECT_EQ(record->modem, "modem0");
    EXPECT_EQ(record->references, std::vector<std::uint8_t>{77});
    EXPECT_FALSE(queue->impl().claim("modem0").has_value());
    EXPECT_FALSE(stored_payload("sms-1").has_value());
}

TEST_F(SmsQueue_Durable, SendCutOffBetweenPartsFailsOnReopen) {
    {
        auto queue = open_queue();
        queue->enqueue(sms("sms-1"));
        ASSERT_TRUE(queue->impl().claim("modem0").has_value());
        queue->impl().record_part("sms-1", "modem0", 0, 2, 5);
    }

    auto queue = open_queue();
    EXPECT_EQ(queue->find("sms-1")->status, SmsStatus::failed);
    EXPECT_FALSE(queue->impl().claim("modem0").has_value());
    EXPECT_FALSE(stored_payload("sms-1").has_value());
}

TEST_F(SmsQueue_Durable, ExpiredSmsIsNeverClaimed) {
    auto queue = open_queue();
    queue->enqueue(sms("sms-1"));

    m_clock.advance(600s);

    EXPECT_FALSE(queue->impl().claim("modem0").has_value());
    EXPECT_EQ(queue->find("sms-1")->status, SmsStatus::expired);
    EXPECT_FALSE(stored_payload("sms-1").has_value());
}

TEST_F(SmsQueue_Durable, ExpiryShowsWithoutAnyWorker) {
    auto queue = open_queue();
    queue->enqueue(sms("sms-1"));
    m_clock.advance(601s);

    EXPECT_EQ(queue->find("sms-1")->status, SmsStatus::expired);
    EXPECT_EQ(queue->stats().depth, 0u);
    EXPECT_EQ(queue->stats().expired, 1u);
}

TEST_F(SmsQueue_Durable, RequeuedSmsWaitsUntilDue) {
    auto queue = open_queue();
    queue->enqueue(sms("sms-1"));
    ASSERT_TRUE(queue->impl().claim("modem0").has_value());

    EXPECT_EQ(queue->impl().requeue("sms-1", "CMS 42 (congestion)", m_clock.now() + 30s),
              Requeued::queued);

    EXPECT_FALSE(queue->impl().claim("modem0").has_value());
    m_clock.advance(30s);
    EXPECT_TRUE(queue->impl().claim("modem0").has_value());
}

// The worker counts the failure from the answer: an SMS with a part sent
// cannot go back to the queue.
TEST_F(SmsQueue_Durable, RequeueAfterAPartWasSentFailsTheSmsAndSaysSo) {
    auto queue = open_queue();
    queue->enqueue(sms("sms-1"));
    ASSERT_TRUE(queue->impl().claim("modem0").has_value());
    queue->impl().record_part("sms-1", "modem0", 0, 2, 5);

    EXPECT_EQ(queue->impl().requeue("sms-1", "CMS 42 (congestion)", m_clock.now()),
              Requeued::failed);

    EXPECT_EQ(queue->find("sms-1")->status, SmsStatus::failed);
    EXPECT_FALSE(queue->impl().claim("modem0").has_value());
}

// An OK without a +CMGS reference may mean the SMS went out: each hand-over
// may repeat the code, so after kMaxAttempts the SMS fails and says why.
TEST_F(SmsQueue_Durable, RequeueGivesUpAfterTheLastHandOver) {
    auto queue = open_queue();
    queue->enqueue(sms("sms-1"));
    for (int attempt = 1; attempt < kMaxAttempts; ++attempt) {
        const auto claimed = queue->impl().claim("modem0");
        ASSERT_TRUE(claimed.has_value());
        EXPECT_EQ(claimed->attempts, attempt);
        EXPECT_EQ(queue->impl().requeue("sms-1", "AT+CMGS: OK without a reference", m_clock.now()),
                  Requeued::queued);
    }
    ASSERT_TRUE(queue->impl().claim("modem0").has_value());

    EXPECT_EQ(queue->impl().requeue("sms-1", "AT+CMGS: OK without a reference", m_clock.now()),
              Requeued::failed);

    const auto record = queue->find("sms-1");
    EXPECT_EQ(record->status, SmsStatus::failed);
    EXPECT_EQ(record->failure,
              "not sent after 3 hand-overs to a modem (it may have reached the user; not tried "
              "again): AT+CMGS: OK without a reference");
    EXPECT_FALSE(queue->impl().claim("modem0").has_value());
    EXPECT_FALSE(stored_payload("sms-1").has_value());
}

// A modem's refusal says the SMS did not go: it is tried again until it
// expires, however often it was handed over.
TEST_F(SmsQueue_Durable, ARefusedSmsIsTriedAgainPastTheLastHandOver) {
    auto queue = open_queue();
    queue->enqueue(sms("sms-1"));
    for (int attempt = 1; attempt <= kMaxAttempts + 2; ++attempt) {
        const auto claimed = queue->impl().claim("modem0");
        ASSERT_TRUE(claimed.has_value()) << "hand-over " << attempt;
        EXPECT_EQ(queue->impl().requeue("sms-1", "CMS 38 (network out of order)", m_clock.now(),
                                        SendDoubt::not_sent),
                  Requeued::queued);
    }
    EXPECT_EQ(queue->find("sms-1")->status, SmsStatus::queued);
}

// Restarts count too: a send cut off by the last one is not handed over again.
TEST_F(SmsQueue_Durable, SendingOnItsLastHandOverFailsOnReopen) {
    {
        auto queue = open_queue();
        queue->enqueue(sms("sms-1"));
        for (int attempt = 1; attempt < kMaxAttempts; ++attempt) {
            ASSERT_TRUE(queue->impl().claim("modem0").has_value());
            ASSERT_EQ(queue->impl().requeue("sms-1", "timeout", m_clock.now()), Requeued::queued);
        }
        ASSERT_TRUE(queue->impl().claim("modem0").has_value());
    }

    auto queue = open_queue();

    EXPECT_EQ(queue->find("sms-1")->status, SmsStatus::failed);
    EXPECT_NE(queue->find("sms-1")->failure.find("interrupted by a stop"), std::string::npos);
    EXPECT_FALSE(queue->impl().claim("modem0").has_value());
}

// A send cut off by a stop whose OTP expired meanwhile is not sent on the
// restart, and shows as expired at once.
TEST_F(SmsQueue_Durable, SendingWhoseExpiryPassedDuringAStopExpiresOnReopen) {
    {
        auto queue = open_queue();
        queue->enqueue(sms("sms-1"));
        ASSERT_TRUE(queue->impl().claim("modem0").has_value());
    }
    m_clock.advance(601s);

    auto queue = open_queue();

    EXPECT_EQ(queue->find("sms-1")->status, SmsStatus::expired);
    EXPECT_FALSE(queue->impl().claim("modem0").has_value());
    EXPECT_EQ(queue->stats().expired, 1u);
}

// A restored database: whatever was queued or being sent at the backup may
// have gone out since, so none of it is sent, expired or not.
TEST_F(SmsQueue_Durable, FailUnsentFailsQueuedAndSendingAndLeavesTheRest) {
    auto queue = open_queue();
    for (const auto* id : {"sms-sent", "sms-sending", "sms-queued"}) {
        queue->enqueue(sms(id));
        m_clock.advance(1s);
    }
    ASSERT_EQ(queue->impl().claim("modem0")->id, "sms-sent");
    queue->impl().record_part("sms-sent", "modem0", 0, 1, 9);
    ASSERT_EQ(queue->impl().claim("modem0")->id, "sms-sending");

    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(db().c_str(), &raw), SQLITE_OK);
    SmsQueue::fail_unsent(raw, m_clock.now(), "restored from a backup");
    sqlite3_close(raw);

    EXPECT_EQ(queue->find("sms-sent")->status, SmsStatus::sent);
    for (const auto* id : {"sms-sending", "sms-queued"}) {
        EXPECT_EQ(queue->find(id)->status, SmsStatus::failed) << id;
        EXPECT_EQ(queue->find(id)->failure, "restored from a backup") << id;
        EXPECT_FALSE(stored_payload(id).has_value()) << id;
    }
    EXPECT_FALSE(queue->impl().claim("modem0").has_value());
}

TEST_F(SmsQueue_Durable, DeliveryReportMarksDelivered) {
    auto queue = open_queue();
    queue->enqueue(sms("sms-1"));
    ASSERT_TRUE(queue->impl().claim("modem0").has_value());
    queue->impl().record_part("sms-1", "modem0", 0, 1, 9);

    queue->impl().record_report("modem1", StatusReport{9, {}, 0, DeliveryClass::delivered});
    EXPECT_EQ(queue->find("sms-1")->status, SmsStatus::sent) << "another modem's reference";
    queue->impl().record_report("modem0", StatusReport{10, {}, 0, DeliveryClass::delivered});
    EXPECT_EQ(queue->find("sms-1")->status, SmsStatus::sent) << "unknown reference";
    queue->impl().record_report("modem0", StatusReport{9, {}, 0x30, DeliveryClass::temporary});
    EXPECT_EQ(queue->find("sms-1")->status, SmsStatus::sent) << "still trying";
    queue->impl().record_report("modem0", StatusReport{9, {}, 0, DeliveryClass::delivered});
    EXPECT_EQ(queue->find("sms-1")->status, SmsStatus::delivered);
}

TEST_F(SmsQueue_Durable, PermanentDeliveryFailureFailsTheSms) {
    auto queue = open_queue();
    queue->enqueue(sms("sms-1"));
    ASSERT_TRUE(queue->impl().claim("modem0").has_value());
    queue->impl().record_part("sms-1", "modem0", 0, 1, 9);

    queue->impl().record_report("modem0", StatusReport{9, {}, 0x41, DeliveryClass::permanent});

    const auto record = queue->find("sms-1");
    EXPECT_EQ(record->status, SmsStatus::failed);
    EXPECT_NE(record->failure.find("TP-ST"), std::string::npos);
}

// Opening an SMS asks the HSM, which may keep the call: meanwhile the queue
// goes on (its stats feed health and the daemon's poll), and an SMS whose
// opening failed goes back as it was, never handed to a modem.
TEST_F(SmsQueue_Durable, AClaimWaitingForTheHsmHoldsUpNothingElse) {
    const auto sealer = std::make_shared<HeldSealer>();
    SmsQueue queue(db(), sealer, m_clock.clock());
    queue.enqueue(sms("sms-1"));
    auto claim = std::async(std::launch::async, [&] { return queue.impl().claim("modem0"); });
    ASSERT_TRUE(sealer->opening_within(5s));

    auto stats = std::async(std::launch::async, [&] {
        queue.enqueue(sms("sms-2"));
        return queue.impl().stats();
    });
    const bool answered = stats.wait_for(5s) == std::future_status::ready;
    sealer->let(HeldSealer::Outcome::fail);
    ASSERT_TRUE(answered) << "the queue waited for the HSM";
    EXPECT_EQ(stats.get().depth, 2u);
    EXPECT_THROW((void)claim.get(), std::runtime_error);
    EXPECT_EQ(queue.find("sms-1")->status, SmsStatus::queued);

    sealer->let(HeldSealer::Outcome::open);
    const auto claimed = queue.impl().claim("modem0");
    ASSERT_TRUE(claimed.has_value());
    EXPECT_EQ(claimed->id, "sms-1");
    EXPECT_EQ(claimed->attempts, 1);
}

TEST_F(SmsQueue_Durable, PayloadThatDoesNotOpenFailsTheSms) {
    {
        auto queue = open_queue();
        queue->enqueue(sms("sms-1"));
    }
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(db().c_str(), &raw), SQLITE_OK);
    ASSERT_EQ(
        sqlite3_exec(raw, "UPDATE sms_messages SET payload = x'00'", nullptr, nullptr, nullptr),
        SQLITE_OK);
    sqlite3_close(raw);

    auto queue = open_queue();
    EXPECT_FALSE(queue->impl().claim("modem0").has_value());
    EXPECT_EQ(queue->find("sms-1")->status, SmsStatus::failed);
}

TEST_F(SmsQueue_Durable, RefusesBadIdsAndDuplicates) {
    auto queue = open_queue();
    EXPECT_THROW(queue->enqueue(sms("bad id")), std::invalid_argument);
    queue->enqueue(sms("sms-1"));
    EXPECT_THROW(queue->enqueue(sms("sms-1")), SmsDatabaseError);
}

TEST_F(SmsQueue_Durable, StatsCountQueuedAndSending) {
    auto queue = open_queue();
    queue->enqueue(sms("sms-1"));
    m_clock.advance(5s);
    queue->enqueue(sms("sms-2"));
    ASSERT_TRUE(queue->impl().claim("modem0").has_value());

    const auto stats = queue->stats();

    EXPECT_EQ(stats.depth, 2u);
    EXPECT_EQ(stats.oldest_age, std::chrono::seconds(5));
}

}  // namespace
}  // namespace otpbox::gsm
