#include "call_deadline.hpp"

#include <algorithm>

namespace otpbox::hsm {

namespace {

// How often the watcher looks: an eighth of the deadline, so an overrun is
// seen at most an eighth late, within bounds that keep an idle watcher quiet
// and a short deadline honest.
std::chrono::milliseconds tick_for(std::chrono::milliseconds timeout) {
    return std::clamp(timeout / 8, std::chrono::milliseconds(5), std::chrono::milliseconds(200));
}

}  // namespace

CallWatch::CallWatch(std::chrono::milliseconds timeout, OnOverrun on_overrun)
    : m_timeout(timeout), m_tick(tick_for(timeout)), m_on_overrun(std::move(on_overrun)) {
    if (m_timeout.count() > 0) {
        m_watcher = std::thread([this] { watch(); });
    }
}

CallWatch::~CallWatch() {
    {
        const std::lock_guard lock(m_mutex);
        m_stopping = true;
    }
    m_stop_requested.notify_one();
    if (m_watcher.joinable()) {
        m_watcher.join();
    }
}

void CallWatch::enter(Entry& entry) {
    const std::lock_guard lock(m_mutex);
    m_entries.push_back(&entry);
}

bool CallWatch::leave(Entry& entry) {
    const std::lock_guard lock(m_mutex);
    const auto found = std::find(m_entries.begin(), m_entries.end(), &entry);
    *found = m_entries.back();
    m_entries.pop_back();
    return entry.overran;
}

// The overrun callback runs under the watch's lock, so a call that returns
// at that moment learns of its overrun only after the callback has finished.
void CallWatch::watch() {
    std::unique_lock lock(m_mutex);
    while (!m_stop_requested.wait_for(lock, m_tick, [this] { return m_stopping; })) {
        const auto now = std::chrono::steady_clock::now();
        for (auto* entry : m_entries) {
            if (!entry->overran && entry->deadline <= now) {
                entry->overran = true;
                m_on_overrun(entry->session, entry->generation, entry->thread);
            }
        }
    }
}

}  // namespace otpbox::hsm
