#pragma once

// Mobile numbers: normalised to E.164 ("+491701234567") when registered, so
// that garbage is refused then and not when an SMS is due.

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace otpbox::gsm {

// "0170 1234567", "(0170) 123-4567", "0049 170 1234567", "+49 170/123 45 67"
// all give "+491701234567" with default country code "49". nullopt for
// anything that is not a plausible phone number (letters, too short, more
// than 15 digits in E.164, a country code alone).
[[nodiscard]] std::optional<std::string> normalize_number(std::string_view input,
                                                          std::string_view default_country = "49");

// True when the E.164 number starts with one of the prefixes ("+49").
[[nodiscard]] bool country_allowed(std::string_view e164, std::span<const std::string> prefixes);

// "+491701234567" gives "+49 170 ****567": country code, the next three
// digits, stars, the last three. Never the whole number.
[[nodiscard]] std::string mask_number(std::string_view e164);

}  // namespace otpbox::gsm
