#pragma once

// What the daemon compares to notice that a file it uses was changed by
// another process (the technician console): cheap enough to take every poll.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

namespace otpbox::firmware::detail {

struct FileStamp {
    std::filesystem::path path;
    bool exists = false;
    std::int64_t modified_ns = 0;
    std::int64_t size = 0;
    // A file renamed over the old one (how the console writes) is a new
    // inode, even within one tick of the file system's clock.
    std::uint64_t inode = 0;

    bool operator==(const FileStamp&) const = default;
};

using Fingerprint = std::vector<FileStamp>;

// The stamps of files, in their order; empty paths are left out.
[[nodiscard]] Fingerprint fingerprint(const std::vector<std::filesystem::path>& files);

}  // namespace otpbox::firmware::detail
