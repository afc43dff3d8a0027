#include "console/terminal.hpp"

#include <algorithm>

namespace otpbox::provisioning::console {

namespace {

constexpr auto kPollSlice = std::chrono::milliseconds(200);

std::string with_crlf(std::string_view text) {
    std::string out;
    out.reserve(text.size() + text.size() / 16);
    for (const char c : text) {
        if (c == '\n') {
            out += "\r\n";
        } else {
            out.push_back(c);
        }
    }
    return out;
}

}  // namespace

Input::~Input() {
    std::fill(text.begin(), text.end(), '\0');
}

void Terminal::print(std::string_view text) {
    m_line.write(with_crlf(text));
}

Input Terminal::read_line(std::string_view prompt, bool hidden,
                          std::optional<std::chrono::seconds> idle) {
    print(prompt);
    m_editor.start(hidden);
    // The line cannot tell that a terminal program let go of it: a line typed
    // half-way stays until Enter, Ctrl-U, Ctrl-C or a session's idle time, and what
    // the next person types is added to it (docs/limitations.md).
    auto last_key = std::chrono::steady_clock::now();
    while (true) {
        if (m_stop.load()) {
            return {InputKind::stopped};
        }
        if (m_pending.empty()) {
            m_pending = m_line.read(512, kPollSlice);
            if (m_pending.empty()) {
                if (idle && std::chrono::steady_clock::now() - last_key >= *idle) {
                    print("\n");
                    return {InputKind::idle};
                }
                continue;
            }
            last_key = std::chrono::steady_clock::now();
        }
        std::string echo;
        std::size_t used = 0;
        auto event = LineEvent::none;
        while (used < m_pending.size() && event == LineEvent::none) {
            event = m_editor.feed(m_pending[used++], echo);
        }
        m_pending.erase(0, used);
        if (!echo.empty()) {
            print(echo);
        }
        switch (event) {
            case LineEvent::none:
                break;
            case LineEvent::cancelled:
                m_editor.wipe();
                return {InputKind::cancelled};
            case LineEvent::end_of_input:
                print("\n");
                return {InputKind::end_of_input};
            case LineEvent::line: {
                Input input{m_editor.overflowed() ? InputKind::too_long : InputKind::line,
                            m_editor.line()};
                m_editor.wipe();
                return input;
            }
        }
    }
}

void Terminal::discard_input(std::chrono::milliseconds duration) {
    constexpr auto kQuiet = std::chrono::milliseconds(300);
    m_pending.clear();
    const auto until = std::chrono::steady_clock::now() + duration;
    auto last_byte = std::chrono::steady_clock::now();
    while (!m_stop.load()) {
        const auto now = std::chrono::steady_clock::now();
        if (now >= until && now - last_byte >= kQuiet) {
            return;
        }
        if (!m_line.read(4096, kPollSlice).empty()) {
            last_byte = std::chrono::steady_clock::now();
        }
    }
}

bool Terminal::interrupted(std::chrono::milliseconds wait) {
    m_pending.clear();
    const auto bytes = m_line.read(512, wait);
    return m_stop.load() || bytes.find_first_of("\x03\x04") != std::string::npos;
}

Input Terminal::read_block(std::chrono::seconds idle, std::size_t max_bytes) {
    std::string block;
    bool seen_end = false;
    while (true) {
        auto input = read_line("", false, idle);
        if (input.kind == InputKind::too_long) {
            return {InputKind::too_long};
        }
        if (input.kind != InputKind::line) {
            return input;
        }
        const auto& text = input.text;
        if (text.empty() || text.find_first_not_of(" \t") == std::string::npos) {
            if (!seen_end) {
                return {InputKind::cancelled};
            }
            return {InputKind::line, std::move(block)};
        }
        if (block.size() + text.size() + 1 > max_bytes) {
            return {InputKind::too_long};
        }
        block += text;
        block += '\n';
        seen_end = seen_end || text.rfind("-----END ", 0) == 0;
    }
}

}  // namespace otpbox::provisioning::console
