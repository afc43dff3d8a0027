#pragma once

// The technician's side of otpbox-console for tests: the console runs on a
// pseudo-terminal it makes itself; the test opens the other end like
// picocom would, types bytes and reads the screen.

#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "test_support.hpp"

namespace otpbox::e2e {

class ConsoleScreen {
  public:
    ConsoleScreen(const std::filesystem::path& config, const std::filesystem::path& link)
        : m_link(link) {
        m_process = std::make_unique<test::ChildProcess>(
            std::vector<std::string>{test::program_path("otpbox-console").string(), "--config",
                                     config.string(), "--pty-link", link.string()},
            std::vector<std::string>{}, link.parent_path() / "console.log");
        if (!test::wait_until([&] { return std::filesystem::exists(link); },
                              std::chrono::seconds(10))) {
            throw std::runtime_error("otpbox-console made no pty: " +
                                     test::read_file(link.parent_path() / "console.log"));
        }
        attach();
    }

    ~ConsoleScreen() {
        detach();
        m_process.reset();
    }

    // Opens the technician's end, raw, as a terminal program does.
    void attach() {
        m_fd = ::open(m_link.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK);
        if (m_fd < 0) {
            throw std::runtime_error("cannot open " + m_link.string());
        }
        termios settings{};
        tcgetattr(m_fd, &settings);
        cfmakeraw(&settings);
        tcsetattr(m_fd, TCSANOW, &settings);
    }

    void detach() {
        if (m_fd >= 0) {
            ::close(m_fd);
            m_fd = -1;
        }
    }

    void type(std::string_view bytes) {
        while (!bytes.empty()) {
            const auto count =
                ::write(m_fd, bytes.data(), std::min<std::size_t>(bytes.size(), 256));
            if (count > 0) {
                bytes.remove_prefix(static_cast<std::size_t>(count));
            } else {
                pump(std::chrono::milliseconds(20));
            }
        }
    }

    void line(std::string_view text) { type(std::string(text) + "\r"); }

    // Everything shown since the last mark() contains text (within timeout).
    bool expect(std::string_view text,
                std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (since_mark().find(text) == std::string::npos) {
            if (std::chrono::steady_clock::now() >= deadline) {
                return false;
            }
            pump(std::chrono::milliseconds(50));
        }
        return true;
    }

    // The output since the last mark, and a new mark at the end.
    std::string mark() {
        pump(std::chrono::milliseconds(50));
        auto text = since_mark();
        m_mark = m_screen.size();
        return text;
    }

    [[nodiscard]] std::string since_mark() const { return m_screen.substr(m_mark); }
    [[nodiscard]] const std::string& screen() const { return m_screen; }
    [[nodiscard]] bool running() { return m_process->running(); }
    [[nodiscard]] int pid() const { return m_process->pid(); }

  private:
    void pump(std::chrono::milliseconds wait) {
        pollfd waiting{m_fd, POLLIN, 0};
        if (::poll(&waiting, 1, static_cast<int>(wait.count())) <= 0) {
            return;
        }
        char buffer[4096];
        const auto count = ::read(m_fd, buffer, sizeof buffer);
        if (count > 0) {
            m_screen.append(buffer, static_cast<std::size_t>(count));
        }
    }

    std::filesystem::path m_link;
    std::unique_ptr<test::ChildProcess> m_process;
    int m_fd = -1;
    std::string m_screen;
    std::size_t m_mark = 0;
};

}  // namespace otpbox::e2e
