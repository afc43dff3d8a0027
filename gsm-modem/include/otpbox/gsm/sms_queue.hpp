#pragma once

// The durable SMS queue: an SMS is a row in SQLite before the API answers,
// and every change of its state is committed before the next step.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "otpbox/gsm/sealer.hpp"

struct sqlite3;

namespace otpbox::gsm {

using TimePoint = std::chrono::system_clock::time_point;
using Clock = std::function<TimePoint()>;

// "sending" is internal: the API shows it as "queued".
enum class SmsStatus { queued, sending, sent, delivered, failed, expired };

// The API's name: "sending" gives "queued".
[[nodiscard]] std::string_view status_name(SmsStatus status) noexcept;

struct OutgoingSms {
    std::string id;  // chosen by the caller, [A-Za-z0-9_-]
    std::string to;  // E.164
    std::string text;
    TimePoint expires_at;  // never sent after this; becomes "expired"
};

struct SmsRecord {
    std::string id;
    SmsStatus status = SmsStatus::queued;
    TimePoint created_at;
    TimePoint updated_at;
    TimePoint expires_at;
    std::string modem;  // the modem that sent it, once sent
    std::vector<std::uint8_t> references;
    std::string failure;  // reason of a failure, for operators; never the text or number
};

struct QueueStats {
    std::size_t depth = 0;  // queued or sending
    std::optional<std::chrono::seconds> oldest_age;
    std::size_t expired = 0;  // rows that expired before they were sent
};

// How often one SMS is handed to a modem when the last hand-over may have
// sent it. A send that ends without a +CMGS reference may still have reached
// the user, so each further hand-over may repeat the code; after the last
// one the SMS fails instead. A modem's refusal (+CMS ERROR) says the SMS did
// not go: it is tried again until it expires, whatever the count.
inline constexpr int kMaxAttempts = 3;

// Whether opening the queue takes over rows a stopped sender left "sending".
// Only the process that runs the modem pool may: another process (the
// technician console) would take a send in progress away from it.
enum class Recovery { take_over_interrupted, leave_to_sender };

class SmsQueue {
  public:
    // Opens (and creates) the queue's tables in the SQLite database at path.
    // With take_over_interrupted, rows that were "sending" when the process
    // stopped become "queued".
    SmsQueue(std::filesystem::path database, std::shared_ptr<Sealer> sealer, Clock clock = {},
             Recovery recovery = Recovery::take_over_interrupted);
    ~SmsQueue();
    SmsQueue(const SmsQueue&) = delete;
    SmsQueue& operator=(const SmsQueue&) = delete;

    // Durable when it returns; wakes the modem pool.
    void enqueue(const OutgoingSms& sms);

    // Writes sms through the caller's own connection to the same database,
    // inside the caller's open transaction, so that the SMS and the work
    // that asked for it commit or roll back together. Durable with that
    // commit; the caller calls wake() after it.
    void enqueue_within(sqlite3* connection, const OutgoingSms& sms);

    // Tells the modem pool that a committed SMS may be waiting.
    void wake();

    // Fails the SMS of that id while it is still queued, erasing its sealed
    // recipient and text, through the caller's connection inside its open
    // transaction. One being sent is left to finish.
    void cancel_within(sqlite3* connection, std::string_view id, std::string_view reason);

    // Fails every SMS still queued or being sent in the database behind
    // connection, erasing its sealed recipient and text. For a database
    // restored from a backup: those SMS may have gone out after the backup
    // was taken, and nothing records their +CMGS any more.
    static void fail_unsent(sqlite3* connection, TimePoint now, std::string_view reason);

    [[nodiscard]] std::optional<SmsRecord> find(std::string_view id);
    [[nodiscard]] QueueStats stats();

    // The modem pool's side (claiming, recording +CMGS and reports), defined
    // in the library's private sms_queue_impl.hpp.
    class Impl;
    [[nodiscard]] Impl& impl() { return *m_impl; }

  private:
    std::unique_ptr<Impl> m_impl;
};

}  // namespace otpbox::gsm
