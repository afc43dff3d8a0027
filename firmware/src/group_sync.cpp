#include "group_sync.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

namespace otpbox::firmware {

GroupSync::GroupSync(std::filesystem::path wal) : m_wal(std::move(wal)) {
    m_fd = ::open(m_wal.c_str(), O_RDONLY | O_CLOEXEC);
    if (m_fd < 0) {
        throw std::system_error(errno, std::generic_category(), "cannot open " + m_wal.string());
    }
}

GroupSync::~GroupSync() {
    if (m_fd >= 0) {
        ::close(m_fd);
    }
}

std::optional<std::string> GroupSync::wait(std::uint64_t sequence) {
    std::unique_lock lock(m_mutex);
    while (m_synced < sequence && !m_failure) {
        if (m_leading) {
            m_done.wait(lock);
            continue;
        }
        // Everything committed so far had its frames written before it was
        // counted, so this one sync covers all of it.
        m_leading = true;
        const auto target = m_committed.load();
        lock.unlock();
        auto failure = sync_file();
        lock.lock();
        m_leading = false;
        if (failure) {
            m_failure = std::move(failure);
        } else {
            m_synced = std::max(m_synced, target);
        }
        m_done.notify_all();
    }
    if (m_synced >= sequence) {
        return std::nullopt;
    }
    return m_failure;
}

std::uint64_t GroupSync::synced() {
    std::lock_guard lock(m_mutex);
    return m_synced;
}

std::optional<std::string> GroupSync::failure() {
    std::lock_guard lock(m_mutex);
    return m_failure;
}

std::optional<std::string> GroupSync::sync_file() {
    ++m_syncs;
    if (::fdatasync(m_fd) != 0) {
        return "cannot sync " + m_wal.string() + ": " + std::strerror(errno);
    }
    return std::nullopt;
}

}  // namespace otpbox::firmware
