#pragma once

// The queue's side for the modem pool: claiming the next message, recording
// each +CMGS before the next step, and delivery reports.

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "otpbox/gsm/pdu.hpp"
#include "otpbox/gsm/sms_queue.hpp"
#include "sms_queue_database.hpp"

namespace otpbox::gsm {

// A message taken for sending, opened from its sealed payload. Wipes its
// recipient and text when destroyed.
struct ClaimedSms {
    ClaimedSms() = default;
    ClaimedSms(ClaimedSms&&) = default;
    ClaimedSms& operator=(ClaimedSms&&) = default;
    ~ClaimedSms();

    std::string id;
    std::string to;
    std::string text;
    TimePoint expires_at;
    int attempts = 0;
};

void wipe(std::string& secret) noexcept;

// What SmsQueue::Impl::requeue did with the SMS.
enum class Requeued { queued, failed };

// Whether the hand-over that ended may have sent the SMS: a modem's refusal
// says it did not; a timeout, a dropped line or an OK without a reference
// leave it open.
enum class SendDoubt { not_sent, may_have_gone };

class SmsQueue::Impl {
  public:
    Impl(const std::filesystem::path& database, std::shared_ptr<Sealer> sealer, Clock clock);

    void enqueue(const OutgoingSms& sms);
    // Seals sms and inserts it as "queued" through connection, which may be
    // another's; does not wake.
    void insert(sqlite3* connection, const OutgoingSms& sms);
    // "queued" becomes "failed" with its payload erased, through connection.
    void cancel(sqlite3* connection, std::string_view id, std::string_view reason);
    [[nodiscard]] std::optional<SmsRecord> find(std::string_view id);
    [[nodiscard]] QueueStats stats();

    // The oldest queued message that is due and unexpired, now "sending" on
    // that modem; expired ones become "expired" on the way.
    [[nodiscard]] std::optional<ClaimedSms> claim(std::string_view modem);
    // Records one part's +CMGS reference; the last part makes the SMS "sent".
    void record_part(std::string_view id, std::string_view modem, std::size_t part,
                     std::size_t parts, std::uint8_t reference);
    // Back to "queued", due at not_before; an SMS with a part already sent
    // fails instead, since sending it again would repeat that part, and so
    // does one that may have gone after kMaxAttempts hand-overs.
    [[nodiscard]] Requeued requeue(std::string_view id, std::string_view failure,
                                   TimePoint not_before,
                                   SendDoubt doubt = SendDoubt::may_have_gone);
    void fail(std::string_view id, std::string_view failure);
    // A +CDS from that modem; unknown references are dropped.
    void record_report(std::string_view modem, const StatusReport& report);

    // Waits until enqueue() or wake() or the timeout.
    void wait_for_work(std::chrono::milliseconds timeout);
    // The same, counting wakes since wake_count() returned seen.
    void wait_for_work(std::chrono::milliseconds timeout, std::uint64_t seen);
    [[nodiscard]] std::uint64_t wake_count();
    void wake();
    [[nodiscard]] TimePoint now() const;

    // Rows a stopped sender left "sending" go back to "queued" (or fail when
    // a part was sent already).
    void recover_interrupted();

  private:
    void create_schema();
    void expire_due(std::int64_t now_ms);
    void finish(std::string_view id, std::string_view status, std::string_view failure);
    // A due row taken for a modem ("sending"), its payload still sealed.
    struct SealedSms {
        ClaimedSms claimed;  // without to and text
        std::vector<std::uint8_t> payload;
    };
    [[nodiscard]] std::optional<SealedSms> take_due(std::string_view modem);
    // Back to "queued" as if it had not been taken.
    void give_back(const std::string& id);
    [[nodiscard]] std::optional<ClaimedSms> open_sealed(SealedSms& sealed);

    std::mutex m_mutex;
    SqliteConnection m_db;
    std::shared_ptr<Sealer> m_sealer;
    Clock m_clock;
    std::mutex m_wake_mutex;
    std::condition_variable m_work;
    std::uint64_t m_generation = 0;
};

}  // namespace otpbox::gsm
