#include "otpbox/firmware/status_file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <system_error>

namespace otpbox::firmware {

namespace {

namespace json = boost::json;

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

void write_status_file(const std::filesystem::path& file, const json::object& status) {
    auto body = status;
    body["pid"] = static_cast<std::int64_t>(::getpid());
    body["written_at"] = unix_now();
    const auto text = json::serialize(body) + "\n";

    auto temporary = file;
    temporary += ".tmp";
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        throw std::system_error(errno, std::generic_category(), temporary.string());
    }
    const auto written = ::write(fd, text.data(), text.size());
    const int saved = errno;
    ::close(fd);
    if (written != static_cast<ssize_t>(text.size())) {
        ::unlink(temporary.c_str());
        throw std::system_error(saved, std::generic_category(), temporary.string());
    }
    if (::rename(temporary.c_str(), file.c_str()) != 0) {
        const int error = errno;
        ::unlink(temporary.c_str());
        throw std::system_error(error, std::generic_category(), file.string());
    }
}

std::optional<DaemonStatus> read_status_file(const std::filesystem::path& file) {
    std::ifstream in(file);
    if (!in) {
        return std::nullopt;
    }
    std::ostringstream text;
    text << in.rdbuf();
    boost::system::error_code error;
    auto value = json::parse(text.str(), error);
    if (error || !value.is_object()) {
        return std::nullopt;
    }
    DaemonStatus status;
    status.body = std::move(value.as_object());
    const auto* pid = status.body.if_contains("pid");
    const auto* written = status.body.if_contains("written_at");
    if (pid == nullptr || written == nullptr || !pid->is_int64() || !written->is_int64()) {
        return std::nullopt;
    }
    status.age = std::chrono::seconds(std::max<std::int64_t>(0, unix_now() - written->as_int64()));
    status.alive = ::kill(static_cast<pid_t>(pid->as_int64()), 0) == 0 || errno == EPERM;
    status.running = status.alive && status.age < kStatusStale;
    return status;
}

}  // namespace otpbox::firmware
