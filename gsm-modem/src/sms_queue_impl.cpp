#include "sms_queue_impl.hpp"

#include <array>

namespace otpbox::gsm {
namespace {

using Milliseconds = std::chrono::milliseconds;

// Stored names; the API's names come from status_name().
constexpr std::array<std::string_view, 6> kStored{"queued",    "sending", "sent",
                                                  "delivered", "failed",  "expired"};

[[nodiscard]] SmsStatus from_stored(std::string_view name) {
    for (std::size_t index = 0; index < kStored.size(); ++index) {
        if (kStored[index] == name) {
            return static_cast<SmsStatus>(index);
        }
    }
    throw SmsDatabaseError("sms queue: unknown status in the database");
}

[[nodiscard]] std::int64_t to_ms(TimePoint time) {
    return std::chrono::duration_cast<Milliseconds>(time.time_since_epoch()).count();
}

[[nodiscard]] TimePoint from_ms(std::int64_t ms) {
    return TimePoint(Milliseconds(ms));
}

// The recipient is E.164 and never holds a line end, so the first one
// separates it from the text.
[[nodiscard]] std::string join_payload(const OutgoingSms& sms) {
    return sms.to + '\n' + sms.text;
}

// The failure of an SMS handed to modems kMaxAttempts times.
[[nodiscard]] std::string given_up(std::string_view last_failure) {
    return "not sent after " + std::to_string(kMaxAttempts) +
           " hand-overs to a modem (it may have reached the user; not tried again): " +
           std::string(last_failure);
}

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS sms_messages (
    id TEXT PRIMARY KEY,
    payload BLOB,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    due_at INTEGER NOT NULL,
    modem TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    parts INTEGER NOT NULL DEFAULT 0,
    failure TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS sms_messages_due ON sms_messages (status, due_at);
CREATE TABLE IF NOT EXISTS sms_references (
    sms_id TEXT NOT NULL REFERENCES sms_messages (id) ON DELETE CASCADE,
    part INTEGER NOT NULL,
    modem TEXT NOT NULL,
    reference INTEGER NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sms_id, part)
);
CREATE INDEX IF NOT EXISTS sms_references_lookup ON sms_references (modem, reference);
)sql";

}  // namespace

void wipe(std::string& secret) noexcept {
    volatile char* bytes = secret.data();
    for (std::size_t index = 0; index < secret.size(); ++index) {
        bytes[index] = 0;
    }
    secret.clear();
}

ClaimedSms::~ClaimedSms() {
    wipe(to);
    wipe(text);
}

SmsQueue::Impl::Impl(const std::filesystem::path& database, std::shared_ptr<Sealer> sealer,
                     Clock clock)
    : m_db(database), m_sealer(std::move(sealer)), m_clock(std::move(clock)) {
    if (!m_sealer) {
        throw std::invalid_argument("sms queue: a sealer is required");
    }
    // Freed pages (a wiped payload) are overwritten, not left in the file.
    m_db.execute("PRAGMA secure_delete=ON");
    create_schema();
}

TimePoint SmsQueue::Impl::now() const {
    return m_clock ? m_clock() : std::chrono::system_clock::now();
}

void SmsQueue::Impl::create_schema() {
    std::lock_guard lock(m_mutex);
    SqliteTransaction transaction(m_db);
    m_db.execute(kSchema);
    transaction.commit();
}

// A send cut off before its +CMGS was recorded goes out again (the user may
// see the code twice) while it has hand-overs left; one cut off between
// parts would repeat a part, so it fails instead.
void SmsQueue::Impl::recover_interrupted() {
    std::lock_guard lock(m_mutex);
    SqliteTransaction transaction(m_db);
    const auto now_ms = to_ms(now());
    m_db.prepare(
            "UPDATE sms_messages SET status = 'failed', payload = NULL, updated_at = ?1, "
            "failure = 'interrupted after a part was sent' WHERE status = 'sending' AND "
            "EXISTS (SELECT 1 FROM sms_references r WHERE r.sms_id = sms_messages.id)")
        .bind(1, now_ms)
        .run();
    m_db.prepare(
            "UPDATE sms_messages SET status = 'failed', payload = NULL, updated_at = ?1, "
            "failure = ?2 WHERE status = 'sending' AND attempts >= ?3")
        .bind(1, now_ms)
        .bind(2, given_up("interrupted by a stop"))
        .bind(3, static_cast<std::int64_t>(kMaxAttempts))
        .run();
    m_db.prepare(
            "UPDATE sms_messages SET status = 'queued', updated_at = ?1 WHERE status = 'sending'")
        .bind(1, now_ms)
        .run();
    expire_due(now_ms);
    transaction.commit();
}

void SmsQueue::Impl::enqueue(const OutgoingSms& sms) {
    {
        std::lock_guard lock(m_mutex);
        insert(m_db.handle(), sms);
    }
    wake();
}

void SmsQueue::Impl::insert(sqlite3* connection, const OutgoingSms& sms) {
    std::string plaintext = join_payload(sms);
    const auto sealed = m_sealer->seal(plaintext, sms.id);
    wipe(plaintext);
    const auto now_ms = to_ms(now());
    SqliteStatement(connection,
                    "INSERT INTO sms_messages (id, payload, status, created_at, updated_at, "
                    "expires_at, due_at) VALUES (?1, ?2, 'queued', ?3, ?3, ?4, ?3)")
        .bind(1, sms.id)
        .bind(2, sealed)
        .bind(3, now_ms)
        .bind(4, to_ms(sms.expires_at))
        .run();
}

void SmsQueue::Impl::cancel(sqlite3* connection, std::string_view id, std::string_view reason) {
    SqliteStatement(connection,
                    "UPDATE sms_messages SET status = 'failed', payload = NULL, updated_at = ?2, "
                    "failure = ?3 WHERE id = ?1 AND status = 'queued'")
        .bind(1, id)
        .bind(2, to_ms(now()))
        .bind(3, reason)
        .run();
}

void SmsQueue::fail_unsent(sqlite3* connection, TimePoint now, std::string_view reason) {
    // A database the queue never opened has no SMS to fail.
    SqliteStatement table(connection,
                          "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = "
                          "'sms_messages'");
    if (!table.step()) {
        return;
    }
    SqliteStatement(connection,
                    "UPDATE sms_messages SET status = 'failed', payload = NULL, updated_at = ?1, "
                    "failure = ?2 WHERE status IN ('queued', 'sending')")
        .bind(1, to_ms(now))
        .bind(2, reason)
        .run();
}

void SmsQueue::Impl::expire_due(std::int64_t now_ms) {
    m_db.prepare(
            "UPDATE sms_messages SET status = 'expired', payload = NULL, updated_at = ?1, "
            "failure = 'expired before it was sent' WHERE status = 'queued' AND expires_at <= ?1")
        .bind(1, now_ms)
        .run();
}

std::optional<SmsRecord> SmsQueue::Impl::find(std::string_view id) {
    std::lock_guard lock(m_mutex);
    expire_due(to_ms(now()));
    auto row = m_db.prepare(
        "SELECT status, created_at, updated_at, expires_at, modem, failure FROM sms_messages "
        "WHERE id = ?1");
    row.bind(1, id);
    if (!row.step()) {
        return std::nullopt;
    }
    SmsRecord record{std::string(id),
                     from_stored(row.text(0)),
                     from_ms(row.integer(1)),
                     from_ms(row.integer(2)),
                     from_ms(row.integer(3)),
                     row.text(4),
                     {},
                     row.text(5)};
    auto references =
        m_db.prepare("SELECT reference FROM sms_references WHERE sms_id = ?1 ORDER BY part");
    references.bind(1, id);
    while (references.step()) {
        record.references.push_back(static_cast<std::uint8_t>(references.integer(0)));
    }
    return record;
}

QueueStats SmsQueue::Impl::stats() {
    std::lock_guard lock(m_mutex);
    const auto now_ms = to_ms(now());
    expire_due(now_ms);
    auto row = m_db.prepare(
        "SELECT COUNT(*), MIN(created_at) FROM sms_messages "
        "WHERE status IN ('queued', 'sending')");
    QueueStats stats;
    if (row.step()) {
        stats.depth = static_cast<std::size_t>(row.integer(0));
        if (stats.depth > 0) {
            stats.oldest_age = std::chrono::duration_cast<std::chrono::seconds>(
                Milliseconds(now_ms - row.integer(1)));
        }
    }
    auto expired = m_db.prepare("SELECT COUNT(*) FROM sms_messages WHERE status = 'expired'");
    if (expired.step()) {
        stats.expired = static_cast<std::size_t>(expired.integer(0));
    }
    return stats;
}

// The row is taken under the lock and opened after it: opening asks the HSM,
// which may keep the call, and meanwhile the rest of the queue (enqueue,
// stats, other modems' claims) must not wait.
std::optional<ClaimedSms> SmsQueue::Impl::claim(std::string_view modem) {
    for (;;) {
        auto sealed = take_due(modem);
        if (!sealed) {
            return std::nullopt;
        }
        const auto id = sealed->claimed.id;
        std::optional<ClaimedSms> claimed;
        try {
            claimed = open_sealed(*sealed);
        } catch (...) {
            // The HSM failed, not the SMS: it was never handed to the modem.
            give_back(id);
            throw;
        }
        if (claimed) {
            return claimed;
        }
        const std::lock_guard lock(m_mutex);
        m_db.prepare(
                "UPDATE sms_messages SET status = 'failed', payload = NULL, updated_at = ?2, "
                "failure = 'payload does not open' WHERE id = ?1 AND status = 'sending'")
            .bind(1, id)
            .bind(2, to_ms(now()))
            .run();
    }
}

std::optional<SmsQueue::Impl::SealedSms> SmsQueue::Impl::take_due(std::string_view modem) {
    const std::lock_guard lock(m_mutex);
    SqliteTransaction transaction(m_db);
    const auto now_ms = to_ms(now());
    expire_due(now_ms);
    auto row = m_db.prepare(
        "SELECT id, payload, expires_at, attempts FROM sms_messages WHERE status = 'queued' "
        "AND due_at <= ?1 ORDER BY due_at, created_at LIMIT 1");
    row.bind(1, now_ms);
    if (!row.step()) {
        return std::nullopt;
    }
    SealedSms sealed;
    sealed.claimed.id = row.text(0);
    sealed.claimed.expires_at = from_ms(row.integer(2));
    sealed.claimed.attempts = static_cast<int>(row.integer(3)) + 1;
    sealed.payload = row.blob(1);
    m_db.prepare(
            "UPDATE sms_messages SET status = 'sending', modem = ?2, updated_at = ?3, "
            "attempts = attempts + 1 WHERE id = ?1")
        .bind(1, sealed.claimed.id)
        .bind(2, modem)
        .bind(3, now_ms)
        .run();
    transaction.commit();
    return sealed;
}

void SmsQueue::Impl::give_back(const std::string& id) {
    const std::lock_guard lock(m_mutex);
    m_db.prepare(
            "UPDATE sms_messages SET status = 'queued', modem = '', attempts = attempts - 1, "
            "updated_at = ?2 WHERE id = ?1 AND status = 'sending'")
        .bind(1, id)
        .bind(2, to_ms(now()))
        .run();
}

std::optional<ClaimedSms> SmsQueue::Impl::open_sealed(SealedSms& sealed) {
    auto claimed = std::move(sealed.claimed);
    auto plaintext = m_sealer->open(sealed.payload, claimed.id);
    if (!plaintext) {
        return std::nullopt;
    }
    const auto newline = plaintext->find('\n');
    if (newline == std::string::npos) {
        wipe(*plaintext);
        return std::nullopt;
    }
    claimed.to = plaintext->substr(0, newline);
    claimed.text = plaintext->substr(newline + 1);
    wipe(*plaintext);
    return claimed;
}

void SmsQueue::Impl::record_part(std::string_view id, std::string_view modem, std::size_t part,
                                 std::size_t parts, std::uint8_t reference) {
    std::lock_guard lock(m_mutex);
    SqliteTransaction transaction(m_db);
    const auto now_ms = to_ms(now());
    m_db.prepare(
            "INSERT OR REPLACE INTO sms_references (sms_id, part, modem, reference) "
            "VALUES (?1, ?2, ?3, ?4)")
        .bind(1, id)
        .bind(2, static_cast<std::int64_t>(part))
        .bind(3, modem)
        .bind(4, static_cast<std::int64_t>(reference))
        .run();
    const bool last = part + 1 == parts;
    m_db.prepare(
            "UPDATE sms_messages SET parts = ?2, updated_at = ?3, status = "
            "CASE WHEN ?4 THEN 'sent' ELSE status END, "
            "payload = CASE WHEN ?4 THEN NULL ELSE payload END WHERE id = ?1")
        .bind(1, id)
        .bind(2, static_cast<std::int64_t>(parts))
        .bind(3, now_ms)
        .bind(4, static_cast<std::int64_t>(last))
        .run();
    transaction.commit();
}

Requeued SmsQueue::Impl::requeue(std::string_view id, std::string_view failure,
                                 TimePoint not_before, SendDoubt doubt) {
    {
        std::lock_guard lock(m_mutex);
        SqliteTransaction transaction(m_db);
        auto sent = m_db.prepare("SELECT COUNT(*) FROM sms_references WHERE sms_id = ?1");
        sent.bind(1, id);
        if (sent.step() && sent.integer(0) > 0) {
            // The row does not keep what stopped it; the modem's health does.
            finish(id, "failed", "stopped after a part was sent");
            transaction.commit();
            return Requeued::failed;
        }
        auto attempts = m_db.prepare("SELECT attempts FROM sms_messages WHERE id = ?1");
        attempts.bind(1, id);
        if (doubt == SendDoubt::may_have_gone && attempts.step() &&
            attempts.integer(0) >= kMaxAttempts) {
            finish(id, "failed", given_up(failure));
            transaction.commit();
            return Requeued::failed;
        }
        m_db.prepare(
                "UPDATE sms_messages SET status = 'queued', modem = '', updated_at = ?2, "
                "due_at = ?3, failure = ?4 WHERE id = ?1 AND status = 'sending'")
            .bind(1, id)
            .bind(2, to_ms(now()))
            .bind(3, to_ms(not_before))
            .bind(4, failure)
            .run();
        transaction.commit();
    }
    wake();
    return Requeued::queued;
}

void SmsQueue::Impl::fail(std::string_view id, std::string_view failure) {
    std::lock_guard lock(m_mutex);
    finish(id, "failed", failure);
}

void SmsQueue::Impl::finish(std::string_view id, std::string_view status,
                            std::string_view failure) {
    m_db.prepare(
            "UPDATE sms_messages SET status = ?2, payload = NULL, updated_at = ?3, failure = ?4 "
            "WHERE id = ?1")
        .bind(1, id)
        .bind(2, status)
        .bind(3, to_ms(now()))
        .bind(4, failure)
        .run();
}

// TP-MR wraps at 256 (TS 23.040 9.2.3.6), so the latest sent message with
// that reference on that modem is the one the report is about.
void SmsQueue::Impl::record_report(std::string_view modem, const StatusReport& report) {
    if (report.delivery == DeliveryClass::temporary) {
        return;  // the service centre keeps trying and reports again
    }
    std::lock_guard lock(m_mutex);
    SqliteTransaction transaction(m_db);
    auto match = m_db.prepare(
        "SELECT r.sms_id, r.part FROM sms_references r JOIN sms_messages m ON m.id = r.sms_id "
        "WHERE r.modem = ?1 AND r.reference = ?2 AND m.status = 'sent' "
        "ORDER BY m.updated_at DESC LIMIT 1");
    match.bind(1, modem).bind(2, static_cast<std::int64_t>(report.message_reference));
    if (!match.step()) {
        return;
    }
    const auto id = match.text(0);
    if (report.delivery == DeliveryClass::permanent) {
        finish(id, "failed", "delivery report: TP-ST " + std::to_string(report.status));
        transaction.commit();
        return;
    }
    m_db.prepare("UPDATE sms_references SET delivered = 1 WHERE sms_id = ?1 AND part = ?2")
        .bind(1, id)
        .bind(2, match.integer(1))
        .run();
    m_db.prepare(
            "UPDATE sms_messages SET status = 'delivered', updated_at = ?2 WHERE id = ?1 AND "
            "NOT EXISTS (SELECT 1 FROM sms_references WHERE sms_id = ?1 AND delivered = 0)")
        .bind(1, id)
        .bind(2, to_ms(now()))
        .run();
    transaction.commit();
}

void SmsQueue::Impl::wait_for_work(std::chrono::milliseconds timeout) {
    wait_for_work(timeout, wake_count());
}

void SmsQueue::Impl::wait_for_work(std::chrono::milliseconds timeout, std::uint64_t seen) {
    std::unique_lock lock(m_wake_mutex);
    m_work.wait_for(lock, timeout, [&] { return m_generation != seen; });
}

std::uint64_t SmsQueue::Impl::wake_count() {
    std::lock_guard lock(m_wake_mutex);
    return m_generation;
}

void SmsQueue::Impl::wake() {
    {
        std::lock_guard lock(m_wake_mutex);
        ++m_generation;
    }
    m_work.notify_all();
}

}  // namespace otpbox::gsm
