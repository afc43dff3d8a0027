#include "outbox.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <ctime>
#include <system_error>

namespace otpbox::modemsim {
namespace {

[[noreturn]] void throw_errno(const char* what) {
    throw std::system_error(errno, std::generic_category(), what);
}

// RFC 3339 in UTC, whole seconds.
[[nodiscard]] std::string rfc3339(std::chrono::system_clock::time_point when) {
    const std::time_t seconds = std::chrono::system_clock::to_time_t(when);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char text[32] = {};
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return text;
}

class AppendFile {
  public:
    explicit AppendFile(const std::filesystem::path& path)
        : m_fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) {
        if (m_fd < 0) {
            throw_errno("open outbox");
        }
    }
    ~AppendFile() { ::close(m_fd); }
    AppendFile(const AppendFile&) = delete;
    AppendFile& operator=(const AppendFile&) = delete;

    [[nodiscard]] int fd() const { return m_fd; }

  private:
    int m_fd;
};

void write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t written = ::write(fd, data.data(), data.size());
        if (written < 0 && errno == EINTR) {
            continue;
        }
        if (written < 0) {
            throw_errno("write outbox");
        }
        data.remove_prefix(static_cast<std::size_t>(written));
    }
}

}  // namespace

std::string outbox_line(const SentMessage& message) {
    boost::json::array pdus;
    for (const auto& pdu : message.pdus) {
        pdus.emplace_back(pdu);
    }
    boost::json::object line;
    line["to"] = message.to;
    line["text"] = message.text;
    line["parts"] = message.pdus.size();
    line["pdu"] = std::move(pdus);
    line["at"] = rfc3339(message.at);
    return boost::json::serialize(line) + "\n";
}

Outbox::Outbox(std::filesystem::path path) : m_path(std::move(path)) {
    const AppendFile created(m_path);
}

void Outbox::append(const SentMessage& message) const {
    // One write of the whole line with O_APPEND, so readers never see half.
    const AppendFile file(m_path);
    write_all(file.fd(), outbox_line(message));
    if (::fsync(file.fd()) != 0) {
        throw_errno("fsync outbox");
    }
}

}  // namespace otpbox::modemsim
