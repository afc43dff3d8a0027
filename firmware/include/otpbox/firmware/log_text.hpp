#pragma once

// Text from elsewhere (an error message, a modem's answer, a client's
// subject) as the value of a quoted key="..." field of a log line.

#include <string>
#include <string_view>

namespace otpbox::firmware {

// A double quote becomes a single one and a control character (a line end
// above all) a space: the text can neither end its field early nor start a
// log line of its own.
[[nodiscard]] std::string quotable(std::string_view text);

}  // namespace otpbox::firmware
