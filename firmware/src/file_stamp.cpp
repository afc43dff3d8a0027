#include "file_stamp.hpp"

#include <sys/stat.h>

namespace otpbox::firmware::detail {

namespace {

constexpr std::int64_t kNanosPerSecond = 1'000'000'000;

// stat() follows a symbolic link, so a link switched to another file counts
// as a change too.
FileStamp stamp_of(const std::filesystem::path& path) {
    FileStamp stamp;
    stamp.path = path;
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) {
        return stamp;
    }
    stamp.exists = true;
    stamp.modified_ns = static_cast<std::int64_t>(info.st_mtim.tv_sec) * kNanosPerSecond +
                        static_cast<std::int64_t>(info.st_mtim.tv_nsec);
    stamp.size = static_cast<std::int64_t>(info.st_size);
    stamp.inode = static_cast<std::uint64_t>(info.st_ino);
    return stamp;
}

}  // namespace

Fingerprint fingerprint(const std::vector<std::filesystem::path>& files) {
    Fingerprint stamps;
    for (const auto& file : files) {
        if (!file.empty()) {
            stamps.push_back(stamp_of(file));
        }
    }
    return stamps;
}

}  // namespace otpbox::firmware::detail
