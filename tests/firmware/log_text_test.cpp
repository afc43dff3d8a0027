// Text from elsewhere in a quoted log field.

#include <gtest/gtest.h>

#include "otpbox/firmware/log_text.hpp"

namespace otpbox::firmware {
namespace {

TEST(LogText_Quotable, QuotesAndLineEndsCannotEndTheFieldOrTheLine) {
    EXPECT_EQ(quotable("must be trace or off, not \"INFO\""), "must be trace or off, not 'INFO'");
    EXPECT_EQ(quotable("ERROR\r\n2026-12-05T00:00:00Z info event=stopped"),
              "ERROR  2026-12-05T00:00:00Z info event=stopped");
    EXPECT_EQ(quotable(std::string("a\tb\x7f"
                                   "c\0d",
                                   7)),
              "a b c d");
}

TEST(LogText_Quotable, LeavesOtherTextAlone) {
    EXPECT_EQ(quotable("CN=otpbox-portal,O=otpbox development"),
              "CN=otpbox-portal,O=otpbox development");
    EXPECT_EQ(quotable("Zürich 'single'"), "Zürich 'single'");
    EXPECT_EQ(quotable(""), "");
}

}  // namespace
}  // namespace otpbox::firmware
