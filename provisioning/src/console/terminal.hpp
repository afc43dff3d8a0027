#pragma once

// The technician's screen and keyboard: prompts, lines, pasted blocks, and
// the idle timeout, on a serial line. Output uses CR LF line ends so any
// terminal program shows it right.

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "console/line_editor.hpp"
#include "console/serial_line.hpp"

namespace otpbox::provisioning::console {

enum class InputKind { line, cancelled, end_of_input, idle, too_long, stopped };

struct Input {
    InputKind kind = InputKind::line;
    std::string text;  // a hidden line is wiped by whoever reads it

    Input() = default;
    Input(InputKind k, std::string t = {}) : kind(k), text(std::move(t)) {}
    Input(const Input&) = delete;
    Input& operator=(const Input&) = delete;
    Input(Input&&) noexcept = default;
    Input& operator=(Input&&) noexcept = default;
    ~Input();
};

class Terminal {
  public:
    static constexpr std::size_t kMaxLine = 1024;

    // stop is set by a signal handler; reads return InputKind::stopped then.
    Terminal(SerialLine& line, const std::atomic<bool>& stop) : m_line(line), m_stop(stop) {}

    void print(std::string_view text);

    // One line after the prompt. Without idle, waits as long as it takes.
    [[nodiscard]] Input read_line(std::string_view prompt, bool hidden,
                                  std::optional<std::chrono::seconds> idle);

    // Pasted lines up to an empty line that follows a "-----END " line, at
    // most max_bytes; Ctrl-C or an empty line before any END cancels.
    [[nodiscard]] Input read_block(std::chrono::seconds idle, std::size_t max_bytes);

    // Drops whatever is typed or pasted for this long (type-ahead after a
    // refused password or paste must not run as commands), and then until
    // the line has been quiet for a moment.
    void discard_input(std::chrono::milliseconds duration);

    // Waits up to wait for Ctrl-C or Ctrl-D, dropping other keys; true when
    // one came (or the console is stopping).
    [[nodiscard]] bool interrupted(std::chrono::milliseconds wait);

  private:
    SerialLine& m_line;
    const std::atomic<bool>& m_stop;
    LineEditor m_editor{kMaxLine};
    std::string m_pending;  // bytes read after the end of the last line
};

}  // namespace otpbox::provisioning::console
