#pragma once

// Line editing as a dumb terminal allows: printable characters, backspace
// (DEL or BS), Ctrl-U clears the line, Ctrl-C cancels it, Ctrl-D on an
// empty line ends the session, CR, LF or CR LF ends a line. Escape
// sequences (arrow keys, a title set by OSC) and other control bytes, a
// break's NUL among them, are dropped. Hidden lines (PINs, passwords) echo nothing.

#include <cstddef>
#include <string>

namespace otpbox::provisioning::console {

enum class LineEvent { none, line, cancelled, end_of_input };

class LineEditor {
  public:
    explicit LineEditor(std::size_t max_length) : m_max_length(max_length) {}

    // Starts a new line; the previous one is forgotten.
    void start(bool hidden);

    // Takes one byte; what the terminal should show is appended to echo.
    LineEvent feed(char byte, std::string& echo);

    // The line that feed() reported, and whether bytes were dropped from it
    // because it was longer than max_length.
    [[nodiscard]] const std::string& line() const { return m_line; }
    [[nodiscard]] bool overflowed() const { return m_overflowed; }
    [[nodiscard]] std::size_t max_length() const { return m_max_length; }

    // Wipes the line (after a PIN was read).
    void wipe() noexcept;

  private:
    LineEvent end_line(std::string& echo);
    void erase_last(std::string& echo);
    void append(char byte, std::string& echo);
    // Gathers a UTF-8 sequence and appends it once whole and valid.
    void take_utf8(char byte, std::string& echo);
    bool skip_escape(char byte);

    // string: inside an OSC, DCS, SOS, PM or APC; string_escape: an ESC in
    // one, which ESC \ makes its end.
    enum class Escape { none, started, csi, single, string, string_escape };

    std::size_t m_max_length;
    std::string m_line;
    bool m_hidden = false;
    bool m_overflowed = false;
    bool m_after_cr = false;
    Escape m_escape = Escape::none;
    std::string m_utf8;  // a UTF-8 sequence begun, not yet whole
};

}  // namespace otpbox::provisioning::console
