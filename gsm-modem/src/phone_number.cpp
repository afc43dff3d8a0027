#include "otpbox/gsm/phone_number.hpp"

#include <algorithm>

namespace otpbox::gsm {
namespace {

// ITU-T E.164 allows at most 15 digits after the "+".
constexpr std::size_t kMaxE164Digits = 15;
// Shorter national significant numbers exist only for special services,
// never for a mobile that can receive an SMS.
constexpr std::size_t kMinNationalDigits = 7;

// The country codes of one and two digits that ITU-T has assigned (E.164
// list of assigned country codes); every other code has three digits.
constexpr std::string_view kOneDigitCodes[] = {"1", "7"};
constexpr std::string_view kTwoDigitCodes[] = {
    "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46",
    "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63",
    "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98"};

// U+00A0 and U+202F in UTF-8: spaces that keep a number on one line.
constexpr std::string_view kNoBreakSpace = "\xc2\xa0";
constexpr std::string_view kNarrowNoBreakSpace = "\xe2\x80\xaf";

[[nodiscard]] bool is_separator(char c) {
    return c == ' ' || c == '-' || c == '/' || c == '.' || c == '(' || c == ')' || c == '\t';
}

[[nodiscard]] bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

[[nodiscard]] bool listed(std::span<const std::string_view> codes, std::string_view code) {
    return std::ranges::find(codes, code) != codes.end();
}

// The country code's length for the digits of an international number.
[[nodiscard]] std::size_t country_code_length(std::string_view digits) {
    if (!digits.empty() && listed(kOneDigitCodes, digits.substr(0, 1))) {
        return 1;
    }
    const auto two = digits.substr(0, 2);
    if (listed(kTwoDigitCodes, two)) {
        return 2;
    }
    return 3;
}

// True once `out` holds the start of an international number and at least
// one digit of its country code: "+4", "004".
[[nodiscard]] bool international_so_far(std::string_view out) {
    return (out.starts_with('+') && out.size() > 1) || (out.starts_with("00") && out.size() > 2);
}

// Keeps "+" and digits; drops the separators people write; a "(0)" trunk
// prefix inside an international number ("+49 (0)170 ...", "0049 (0)170
// ...") is dropped too.
[[nodiscard]] std::optional<std::string> strip(std::string_view input) {
    std::string out;
    for (std::size_t i = 0; i < input.size(); ++i) {
        const char c = input[i];
        if (input.substr(i, 3) == "(0)" && international_so_far(out)) {
            i += 2;
        } else if (input.substr(i, 2) == kNoBreakSpace ||
                   input.substr(i, 3) == kNarrowNoBreakSpace) {
            // As copied from a web page or a word processor.
            i += input.substr(i, 2) == kNoBreakSpace ? 1 : 2;
        } else if (c == '+' && out.empty()) {
            out.push_back(c);
        } else if (is_digit(c)) {
            out.push_back(c);
        } else if (!is_separator(c)) {
            return std::nullopt;
        }
    }
    return out;
}

// The digits after the "+" of the E.164 form, or nullopt.
[[nodiscard]] std::optional<std::string> international_digits(std::string_view stripped,
                                                              std::string_view default_country) {
    if (stripped.starts_with('+')) {
        return std::string(stripped.substr(1));
    }
    if (stripped.starts_with("00")) {
        return std::string(stripped.substr(2));
    }
    if (stripped.starts_with('0')) {
        return std::string(default_country) + std::string(stripped.substr(1));
    }
    // Without a trunk or international prefix it is a local number whose
    // area code is unknown.
    return std::nullopt;
}

[[nodiscard]] bool plausible(std::string_view digits) {
    if (digits.empty() || digits.size() > kMaxE164Digits || digits.front() == '0') {
        return false;
    }
    // Fewer digits than the country code has ("+4", "0042") leave no
    // national number at all.
    const auto code_length = country_code_length(digits);
    if (digits.size() <= code_length) {
        return false;
    }
    const auto national = digits.substr(code_length);
    return national.size() >= kMinNationalDigits && !national.starts_with('0');
}

}  // namespace

std::optional<std::string> normalize_number(std::string_view input,
                                            std::string_view default_country) {
    const auto stripped = strip(input);
    if (!stripped) {
        return std::nullopt;
    }
    const auto digits = international_digits(*stripped, default_country);
    if (!digits || !std::all_of(digits->begin(), digits->end(), is_digit) || !plausible(*digits)) {
        return std::nullopt;
    }
    return "+" + *digits;
}

bool country_allowed(std::string_view e164, std::span<const std::string> prefixes) {
    return std::any_of(prefixes.begin(), prefixes.end(), [&](const std::string& prefix) {
        return !prefix.empty() && e164.starts_with(prefix);
    });
}

std::string mask_number(std::string_view e164) {
    const auto digits = e164.starts_with('+') ? e164.substr(1) : e164;
    const auto code_length = std::min(country_code_length(digits), digits.size());
    const auto national = digits.substr(code_length);
    std::string masked = "+" + std::string(digits.substr(0, code_length)) + " ";

    // Showing head and tail of a short number would show all of it.
    constexpr std::size_t kHead = 3;
    constexpr std::size_t kTail = 3;
    if (national.size() < kHead + kTail + 2) {
        return masked + std::string(national.size(), '*');
    }
    masked += std::string(national.substr(0, kHead)) + " ";
    masked += std::string(national.size() - kHead - kTail, '*');
    masked += national.substr(national.size() - kTail);
    return masked;
}

}  // namespace otpbox::gsm
