#pragma once

// Group commit for a SQLite database in WAL mode with synchronous=NORMAL:
// a commit writes its frames to the -wal file without syncing it, and the
// committing thread then waits here until one fdatasync of that file has
// run after its commit. Threads that wait together share one sync: the
// first becomes the leader and syncs for everyone who committed before it
// began; the others wait for it, and one of those left uncovered leads the
// next sync. On Linux fdatasync flushes the file's data whichever
// descriptor names it, so a descriptor of our own serves beside SQLite's.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>

namespace otpbox::firmware {

class GroupSync {
  public:
    // wal: the database's -wal file, which must exist. Throws
    // std::system_error when it cannot be opened.
    explicit GroupSync(std::filesystem::path wal);
    ~GroupSync();
    GroupSync(const GroupSync&) = delete;
    GroupSync& operator=(const GroupSync&) = delete;

    // Called after each commit's frames are written: its sequence number.
    std::uint64_t committed() noexcept { return ++m_committed; }
    [[nodiscard]] std::uint64_t last_committed() const noexcept { return m_committed.load(); }

    // Returns once every commit up to `sequence` is on disk. Nullopt when it
    // is; otherwise why a sync failed. A failed sync is final for this
    // object: the kernel may have dropped the pages it could not write, so
    // a later sync that succeeds would not prove the commits before it.
    [[nodiscard]] std::optional<std::string> wait(std::uint64_t sequence);

    // Why a sync failed, once one has.
    [[nodiscard]] std::optional<std::string> failure();

    // The commits known to be on disk.
    [[nodiscard]] std::uint64_t synced();

    // How many syncs ran, for the commits counted by last_committed().
    [[nodiscard]] std::uint64_t syncs() const noexcept { return m_syncs.load(); }

  private:
    // Syncs the file; an error text when it could not.
    [[nodiscard]] std::optional<std::string> sync_file();

    const std::filesystem::path m_wal;
    std::atomic<std::uint64_t> m_committed{0};
    std::atomic<std::uint64_t> m_syncs{0};

    std::mutex m_mutex;
    std::condition_variable m_done;
    std::uint64_t m_synced = 0;            // under m_mutex
    bool m_leading = false;                // under m_mutex: a sync is running
    std::optional<std::string> m_failure;  // under m_mutex: why a sync failed
    int m_fd = -1;
};

}  // namespace otpbox::firmware
