#include "otpbox/gsm/sms_queue.hpp"

#include <algorithm>
#include <stdexcept>

#include "sms_queue_impl.hpp"

namespace otpbox::gsm {
namespace {

[[nodiscard]] bool valid_id(std::string_view id) noexcept {
    return !id.empty() && id.size() <= 128 && std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
    });
}

}  // namespace

std::string_view status_name(SmsStatus status) noexcept {
    switch (status) {
        case SmsStatus::queued:
        case SmsStatus::sending:
            return "queued";
        case SmsStatus::sent:
            return "sent";
        case SmsStatus::delivered:
            return "delivered";
        case SmsStatus::failed:
            return "failed";
        case SmsStatus::expired:
            return "expired";
    }
    return "queued";
}

SmsQueue::SmsQueue(std::filesystem::path database, std::shared_ptr<Sealer> sealer, Clock clock,
                   Recovery recovery)
    : m_impl(std::make_unique<Impl>(database, std::move(sealer), std::move(clock))) {
    if (recovery == Recovery::take_over_interrupted) {
        m_impl->recover_interrupted();
    }
}

SmsQueue::~SmsQueue() = default;

void SmsQueue::enqueue(const OutgoingSms& sms) {
    if (!valid_id(sms.id)) {
        throw std::invalid_argument("sms queue: id must be 1-128 of [A-Za-z0-9_-]");
    }
    m_impl->enqueue(sms);
}

void SmsQueue::enqueue_within(sqlite3* connection, const OutgoingSms& sms) {
    if (!valid_id(sms.id)) {
        throw std::invalid_argument("sms queue: id must be 1-128 of [A-Za-z0-9_-]");
    }
    m_impl->insert(connection, sms);
}

void SmsQueue::cancel_within(sqlite3* connection, std::string_view id, std::string_view reason) {
    m_impl->cancel(connection, id, reason);
}

void SmsQueue::wake() {
    m_impl->wake();
}

std::optional<SmsRecord> SmsQueue::find(std::string_view id) {
    return m_impl->find(id);
}

QueueStats SmsQueue::stats() {
    return m_impl->stats();
}

}  // namespace otpbox::gsm
