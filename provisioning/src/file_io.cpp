#include "file_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace otpbox::provisioning::detail {

namespace {

[[noreturn]] void throw_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

class FileDescriptor {
  public:
    explicit FileDescriptor(int fd) : m_fd(fd) {}
    ~FileDescriptor() {
        if (m_fd >= 0) {
            ::close(m_fd);
        }
    }
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;

    [[nodiscard]] int get() const { return m_fd; }
    [[nodiscard]] int release() {
        const int fd = m_fd;
        m_fd = -1;
        return fd;
    }

  private:
    int m_fd;
};

void write_all(int fd, std::string_view text, const std::string& name) {
    while (!text.empty()) {
        const ssize_t written = ::write(fd, text.data(), text.size());
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_errno("cannot write " + name);
        }
        text.remove_prefix(static_cast<std::size_t>(written));
    }
}

}  // namespace

void write_file_atomically(const std::filesystem::path& path, std::string_view text, mode_t mode) {
    const std::filesystem::path temporary = path.string() + ".tmp";
    ::unlink(temporary.c_str());
    FileDescriptor fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
    if (fd.get() < 0) {
        throw_errno("cannot create " + temporary.string());
    }
    try {
        // The umask may have taken bits away from mode; set exactly what was asked.
        if (::fchmod(fd.get(), mode) != 0) {
            throw_errno("cannot set the mode of " + temporary.string());
        }
        write_all(fd.get(), text, temporary.string());
        if (::fsync(fd.get()) != 0) {
            throw_errno("cannot sync " + temporary.string());
        }
        if (::close(fd.release()) != 0) {
            throw_errno("cannot close " + temporary.string());
        }
        if (::rename(temporary.c_str(), path.c_str()) != 0) {
            throw_errno("cannot rename " + temporary.string() + " to " + path.string());
        }
    } catch (...) {
        // A half-written private key or card must not stay behind.
        ::unlink(temporary.c_str());
        throw;
    }
    // The rename itself is durable only once the folder is synced.
    const auto folder =
        path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
    const FileDescriptor dir(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() >= 0) {
        (void)::fsync(dir.get());
    }
}

void make_directory(const std::filesystem::path& dir, mode_t mode) {
    std::filesystem::create_directories(dir);
    if (::chmod(dir.c_str(), mode) != 0) {
        throw_errno("cannot set the mode of " + dir.string());
    }
}

}  // namespace otpbox::provisioning::detail
