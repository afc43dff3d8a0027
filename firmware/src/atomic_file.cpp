#include "atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>
#include <utility>

namespace otpbox::firmware::detail {

namespace {

namespace fs = std::filesystem;

[[noreturn]] void throw_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

class FileDescriptor {
  public:
    explicit FileDescriptor(int fd) noexcept : m_fd(fd) {}
    ~FileDescriptor() {
        if (m_fd >= 0) {
            ::close(m_fd);
        }
    }
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;

    [[nodiscard]] int get() const noexcept { return m_fd; }

  private:
    int m_fd;
};

void write_all(int fd, std::string_view text, const fs::path& name) {
    while (!text.empty()) {
        const ssize_t written = ::write(fd, text.data(), text.size());
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_errno("cannot write " + name.string());
        }
        text.remove_prefix(static_cast<std::size_t>(written));
    }
}

// The temporary file is removed again unless it was renamed.
class Temporary {
  public:
    explicit Temporary(const fs::path& target) : m_path(target.string() + ".XXXXXX") {
        std::string pattern = m_path.string();
        m_fd = ::mkostemp(pattern.data(), O_CLOEXEC);
        if (m_fd < 0) {
            throw_errno("cannot create a temporary file beside " + target.string());
        }
        m_path = pattern;
    }
    ~Temporary() {
        if (m_fd >= 0) {
            ::close(m_fd);
        }
        if (!m_renamed) {
            ::unlink(m_path.c_str());
        }
    }
    Temporary(const Temporary&) = delete;
    Temporary& operator=(const Temporary&) = delete;

    [[nodiscard]] int fd() const noexcept { return m_fd; }
    [[nodiscard]] const fs::path& path() const noexcept { return m_path; }

    void close() {
        if (::close(std::exchange(m_fd, -1)) != 0) {
            throw_errno("cannot close " + m_path.string());
        }
    }
    void rename_to(const fs::path& target) {
        if (::rename(m_path.c_str(), target.c_str()) != 0) {
            throw_errno("cannot rename " + m_path.string() + " to " + target.string());
        }
        m_renamed = true;
    }

  private:
    fs::path m_path;
    int m_fd = -1;
    bool m_renamed = false;
};

// The rename is durable only once the folder's entry is on disk.
void sync_folder(const fs::path& folder) {
    const FileDescriptor fd(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0 || ::fsync(fd.get()) != 0) {
        throw_errno("cannot sync the folder " + folder.string());
    }
}

}  // namespace

void write_file_atomically(const fs::path& path, std::string_view text, mode_t mode) {
    Temporary temporary(path);
    // mkostemp makes the file 0600 whatever the umask; set exactly what was asked.
    if (::fchmod(temporary.fd(), mode) != 0) {
        throw_errno("cannot set the mode of " + temporary.path().string());
    }
    write_all(temporary.fd(), text, temporary.path());
    if (::fsync(temporary.fd()) != 0) {
        throw_errno("cannot sync " + temporary.path().string());
    }
    temporary.close();
    temporary.rename_to(path);
    const auto folder = path.parent_path();
    sync_folder(folder.empty() ? fs::path(".") : folder);
}

}  // namespace otpbox::firmware::detail
