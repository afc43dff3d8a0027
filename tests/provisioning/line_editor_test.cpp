// The console's line editor with what a terminal can send beyond ASCII:
// UTF-8 is taken whole, invalid sequences and C1 controls never reach the
// line or the echo.

#include "console/line_editor.hpp"

#include <gtest/gtest.h>

#include <string>

namespace otpbox::provisioning::console {
namespace {

struct Typed {
    std::string line;
    std::string echo;
};

Typed type(std::string_view bytes, std::size_t max_length = 64) {
    LineEditor editor(max_length);
    editor.start(false);
    Typed typed;
    for (const char byte : bytes) {
        (void)editor.feed(byte, typed.echo);
    }
    typed.line = editor.line();
    return typed;
}

TEST(LineEditor_Utf8, TakesWholeCharacters) {
    const auto typed = type("O=\xC3\x84rzte \xE2\x82\xAC \xF0\x9F\x94\x91");
    EXPECT_EQ(typed.line, "O=\xC3\x84rzte \xE2\x82\xAC \xF0\x9F\x94\x91");
    EXPECT_EQ(typed.echo, typed.line);
}

TEST(LineEditor_Utf8, DropsC1ControlsAndInvalidSequences) {
    // C1 CSI alone and as UTF-8, a stray continuation byte, overlong forms,
    // a surrogate, beyond U+10FFFF, and bytes that never begin a sequence.
    const auto typed = type(
        "a\x9B"
        "b\xC2\x9B"
        "c\x80"
        "d\xC0\xAF"
        "e\xE0\x80\xAF"
        "f\xED\xA0\x80"
        "g\xF4\x90\x80\x80"
        "h\xFF\xFE"
        "i");
    EXPECT_EQ(typed.line, "abcdefghi");
    EXPECT_EQ(typed.echo, "abcdefghi");
}

TEST(LineEditor_Utf8, ASequenceBrokenOffLeavesTheNextCharacter) {
    EXPECT_EQ(type("\xC3"
                   "A\xE2\x82"
                   "\xC3\xA9")
                  .line,
              "A\xC3\xA9");
}

TEST(LineEditor_Utf8, BackspaceErasesAWholeCharacter) {
    EXPECT_EQ(type("x\xC3\x84\x7F").line, "x");
}

TEST(LineEditor_Utf8, ACharacterThatDoesNotFitIsNotSplit) {
    LineEditor editor(3);
    editor.start(false);
    std::string echo;
    for (const char byte : std::string("ab\xC3\x84")) {
        (void)editor.feed(byte, echo);
    }
    EXPECT_EQ(editor.line(), "ab");
    EXPECT_TRUE(editor.overflowed());
}

// A lone Esc (a technician's reflex to get out) must not eat the key after
// it: Enter still ends the line, Ctrl-C still cancels it.
LineEvent feed_all(LineEditor& editor, std::string_view bytes) {
    std::string echo;
    auto event = LineEvent::none;
    for (const char byte : bytes) {
        event = editor.feed(byte, echo);
    }
    return event;
}

TEST(LineEditor_Escape, EnterAfterALoneEscEndsTheLine) {
    LineEditor editor(64);
    editor.start(false);
    EXPECT_EQ(feed_all(editor, "status\x1B\r"), LineEvent::line);
    EXPECT_EQ(editor.line(), "status");
}

TEST(LineEditor_Escape, CtrlCAfterALoneEscCancelsTheLine) {
    LineEditor editor(64);
    editor.start(false);
    EXPECT_EQ(feed_all(editor, "pincard revoke X\x1B\x03"), LineEvent::cancelled);
}

TEST(LineEditor_Escape, ControlBytesBreakOffAnUnfinishedSequence) {
    LineEditor editor(64);
    editor.start(false);
    EXPECT_EQ(feed_all(editor, "ab\x1BO\r"), LineEvent::line);
    editor.start(false);
    EXPECT_EQ(feed_all(editor, "ab\x1B[1;\x03"), LineEvent::cancelled);
}

TEST(LineEditor_Escape, SequencesAreStillDroppedWhole) {
    // Arrow keys (CSI and SS3 forms), a CSI with parameters, Alt+x, and an
    // ESC that begins a new sequence inside another.
    EXPECT_EQ(type("a\x1B[Ab\x1BOBc\x1B[1;5Dd\x1Bxe\x1B\x1B[Cf").line, "abcdef");
}

// A terminal answering a query, or a paste that carries a title, sends
// string sequences: none of their text lands in the line.
TEST(LineEditor_Escape, StringSequencesAreDroppedWhole) {
    EXPECT_EQ(type("ab\x1B]0;title\x07"
                   "cd")
                  .line,
              "abcd");
    EXPECT_EQ(type("ab\x1B]0;title\x1B\\cd").line, "abcd");
    EXPECT_EQ(type("a\x1BP1$r0m\x1B\\b\x1BXsos\x1B\\c\x1B^pm\x1B\\d\x1B_apc\x1B\\e").line, "abcde");
    // A title with UTF-8 in it.
    EXPECT_EQ(type("a\x1B]2;\xC3\x84rzte\x07"
                   "b")
                  .line,
              "ab");
    // An ESC in a string that is no terminator begins a new sequence.
    EXPECT_EQ(type("a\x1B]0;t\x1B[Ab").line, "ab");
}

TEST(LineEditor_Escape, EnterEndsALineInsideAStringNeverEnded) {
    LineEditor editor(64);
    editor.start(false);
    EXPECT_EQ(feed_all(editor, "status\x1B]0;title\r"), LineEvent::line);
    EXPECT_EQ(editor.line(), "status");
    editor.start(false);
    EXPECT_EQ(feed_all(editor, "x\x1BPq\x03"), LineEvent::cancelled);
}

}  // namespace
}  // namespace otpbox::provisioning::console
