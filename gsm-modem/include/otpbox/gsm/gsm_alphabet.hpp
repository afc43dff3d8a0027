#pragma once

// The GSM 7-bit default alphabet and its extension table (3GPP TS 23.038
// 6.2.1 and 6.2.1.1), and the UTF-8 and UTF-16 conversions the SMS codec
// needs around it.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace otpbox::gsm {

// Code points of UTF-8 text; nullopt when the text is not valid UTF-8.
[[nodiscard]] std::optional<std::u32string> utf8_to_code_points(std::string_view text);
[[nodiscard]] std::string code_points_to_utf8(std::u32string_view code_points);

// The septets of one character: one from the default table, two (escape
// 0x1B and the code) from the extension table, none when it has no GSM code.
[[nodiscard]] std::vector<std::uint8_t> gsm7_septets(char32_t code_point);

// Septets back to code points. An escape followed by a code the extension
// table does not define shows the default table's character, as TS 23.038
// 6.2.1.1 asks of a receiver.
[[nodiscard]] std::u32string gsm7_to_code_points(std::span<const std::uint8_t> septets);

// UTF-16 code units of a code point: one, or a surrogate pair beyond U+FFFF.
[[nodiscard]] std::u16string utf16_units(char32_t code_point);
// UTF-16 (as phones read UCS-2) back to code points; a lone surrogate
// becomes U+FFFD.
[[nodiscard]] std::u32string utf16_to_code_points(std::u16string_view units);

}  // namespace otpbox::gsm
