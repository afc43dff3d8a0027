#include "console/line_editor.hpp"

#include <algorithm>
#include <utility>

#include "otpbox/gsm/gsm_alphabet.hpp"

namespace otpbox::provisioning::console {

namespace {

constexpr char kCtrlC = 0x03;
constexpr char kCtrlD = 0x04;
constexpr char kBell = 0x07;
constexpr char kBackspace = 0x08;
constexpr char kCtrlU = 0x15;
constexpr char kEscape = 0x1b;
constexpr char kDelete = 0x7f;

bool is_utf8_continuation(char byte) {
    return (static_cast<unsigned char>(byte) & 0xC0) == 0x80;
}

constexpr std::size_t kLongestUtf8 = 4;  // RFC 3629 section 3

// True when the sequence is one whole UTF-8 character a terminal only shows:
// not invalid, and no C1 control (U+0080 to U+009F), which an 8-bit terminal
// could act on.
bool printable_character(const std::string& sequence) {
    const auto decoded = gsm::utf8_to_code_points(sequence);
    return decoded && decoded->size() == 1 && decoded->front() >= 0xA0;
}

// The final byte after ESC of a string sequence: DCS, SOS, OSC, PM, APC.
bool is_string_introducer(char byte) {
    return byte == 'P' || byte == 'X' || byte == ']' || byte == '^' || byte == '_';
}

}  // namespace

void LineEditor::start(bool hidden) {
    wipe();
    m_line.clear();
    m_hidden = hidden;
    m_overflowed = false;
    m_escape = Escape::none;
    m_utf8.clear();
}

void LineEditor::wipe() noexcept {
    std::fill(m_line.begin(), m_line.end(), '\0');
    m_line.clear();
}

LineEvent LineEditor::feed(char byte, std::string& echo) {
    const bool after_cr = std::exchange(m_after_cr, false);
    if (skip_escape(byte)) {
        return LineEvent::none;
    }
    switch (byte) {
        case '\r':
            m_after_cr = true;
            return end_line(echo);
        case '\n':
            // The LF of a CR LF pair ends nothing more.
            return after_cr ? LineEvent::none : end_line(echo);
        case kCtrlC:
            echo += "^C\n";
            return LineEvent::cancelled;
        case kCtrlD:
            return m_line.empty() ? LineEvent::end_of_input : LineEvent::none;
        case kBackspace:
        case kDelete:
            erase_last(echo);
            return LineEvent::none;
        case kCtrlU:
            while (!m_line.empty()) {
                erase_last(echo);
            }
            return LineEvent::none;
        default:
            break;
    }
    if (static_cast<unsigned char>(byte) >= 0x80 || !m_utf8.empty()) {
        take_utf8(byte, echo);
    } else if (static_cast<unsigned char>(byte) >= 0x20) {
        append(byte, echo);
    }
    return LineEvent::none;
}

// Invalid UTF-8 and C1 controls are dropped whole; a byte that breaks a
// sequence off is taken on its own.
void LineEditor::take_utf8(char byte, std::string& echo) {
    if (!m_utf8.empty() && !is_utf8_continuation(byte)) {
        m_utf8.clear();
    }
    if (m_utf8.empty() && static_cast<unsigned char>(byte) < 0x80) {
        if (static_cast<unsigned char>(byte) >= 0x20) {
            append(byte, echo);
        }
        return;
    }
    // A sequence is whole once it decodes: a shorter part of it does not.
    m_utf8.push_back(byte);
    if (!printable_character(m_utf8)) {
        if (m_utf8.size() >= kLongestUtf8) {
            m_utf8.clear();
        }
        return;
    }
    if (m_line.size() + m_utf8.size() > m_max_length) {
        m_overflowed = true;
    } else {
        for (const char part : m_utf8) {
            append(part, echo);
        }
    }
    m_utf8.clear();
}

LineEvent LineEditor::end_line(std::string& echo) {
    echo += "\n";
    return LineEvent::line;
}

void LineEditor::erase_last(std::string& echo) {
    if (m_line.empty()) {
        return;
    }
    // One character, however many UTF-8 bytes it took.
    while (!m_line.empty() && is_utf8_continuation(m_line.back())) {
        m_line.pop_back();
    }
    if (!m_line.empty()) {
        m_line.pop_back();
    }
    if (!m_hidden) {
        echo += "\b \b";
    }
}

void LineEditor::append(char byte, std::string& echo) {
    if (m_line.size() >= m_max_length) {
        m_overflowed = true;
        return;
    }
    m_line.push_back(byte);
    if (!m_hidden) {
        echo.push_back(byte);
    }
}

// ESC [ ... final byte (0x40-0x7E), ESC O x, or ESC x: taken whole and dropped.
// The string sequences, ESC ] (OSC), ESC P (DCS), ESC X (SOS), ESC ^ (PM) and
// ESC _ (APC), run to the string terminator ESC \ or, as xterm also ends an
// OSC, BEL (ECMA-48 8.3.89, 8.3.115, 5.6); they are dropped whole too. Their
// 8-bit forms are not: the C1 byte alone is dropped as invalid UTF-8, and
// the string after it is taken as typed. A control byte breaks
// a sequence off and keeps its own meaning, as on a VT terminal: Enter or
// Ctrl-C typed after a lone Esc, or inside a string never ended, still ends
// or cancels the line, and another ESC begins a new sequence.
bool LineEditor::skip_escape(char byte) {
    const auto value = static_cast<unsigned char>(byte);
    if (m_escape == Escape::string && (byte == kBell || byte == kEscape)) {
        m_escape = byte == kBell ? Escape::none : Escape::string_escape;
        return true;
    }
    if (m_escape == Escape::string_escape && byte == '\\') {
        m_escape = Escape::none;
        return true;
    }
    if (m_escape != Escape::none && value < 0x20) {
        m_escape = byte == kEscape ? Escape::started : Escape::none;
        return byte == kEscape;
    }
    switch (m_escape) {
        case Escape::none:
            if (byte == kEscape) {
                m_escape = Escape::started;
                return true;
            }
            return false;
        case Escape::started:
        case Escape::string_escape:
            m_escape = byte == '[' ? Escape::csi : (byte == 'O' ? Escape::single : Escape::none);
            if (is_string_introducer(byte)) {
                m_escape = Escape::string;
            }
            return true;
        case Escape::csi:
            if (value >= 0x40 && value <= 0x7E) {
                m_escape = Escape::none;
            } else if (value > 0x7E) {
                m_escape = Escape::none;
                return false;
            }
            return true;
        case Escape::single:
            m_escape = Escape::none;
            return true;
        case Escape::string:
            return true;
    }
    return false;
}

}  // namespace otpbox::provisioning::console
