#include "otpbox/gsm/gsm_alphabet.hpp"

namespace otpbox::gsm {
namespace {

constexpr char32_t kReplacement = 0xFFFD;
constexpr char32_t kMaxCodePoint = 0x10FFFF;

[[nodiscard]] bool is_surrogate(char32_t c) {
    return c >= 0xD800 && c <= 0xDFFF;
}

// Length of a UTF-8 sequence from its lead byte, 0 when it cannot lead.
[[nodiscard]] std::size_t sequence_length(unsigned char lead) {
    if (lead < 0x80) {
        return 1;
    }
    if (lead >= 0xC2 && lead <= 0xDF) {
        return 2;
    }
    if (lead >= 0xE0 && lead <= 0xEF) {
        return 3;
    }
    if (lead >= 0xF0 && lead <= 0xF4) {
        return 4;
    }
    return 0;
}

// The smallest code point each length may carry: longer forms are overlong.
[[nodiscard]] char32_t minimum_for(std::size_t length) {
    constexpr char32_t kMinimum[] = {0, 0, 0x80, 0x800, 0x10000};
    return kMinimum[length];
}

}  // namespace

std::optional<std::u32string> utf8_to_code_points(std::string_view text) {
    std::u32string out;
    for (std::size_t i = 0; i < text.size();) {
        const auto lead = static_cast<unsigned char>(text[i]);
        const std::size_t length = sequence_length(lead);
        if (length == 0 || i + length > text.size()) {
            return std::nullopt;
        }
        char32_t c = length == 1 ? lead : (lead & (0x7F >> length));
        for (std::size_t k = 1; k < length; ++k) {
            const auto next = static_cast<unsigned char>(text[i + k]);
            if ((next & 0xC0) != 0x80) {
                return std::nullopt;
            }
            c = (c << 6) | (next & 0x3F);
        }
        if (c < minimum_for(length) || c > kMaxCodePoint || is_surrogate(c)) {
            return std::nullopt;
        }
        out.push_back(c);
        i += length;
    }
    return out;
}

std::string code_points_to_utf8(std::u32string_view code_points) {
    std::string out;
    for (char32_t c : code_points) {
        if (c > kMaxCodePoint || is_surrogate(c)) {
            c = kReplacement;
        }
        if (c < 0x80) {
            out.push_back(static_cast<char>(c));
        } else if (c < 0x800) {
            out.push_back(static_cast<char>(0xC0 | (c >> 6)));
            out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
        } else if (c < 0x10000) {
            out.push_back(static_cast<char>(0xE0 | (c >> 12)));
            out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
        } else {
            out.push_back(static_cast<char>(0xF0 | (c >> 18)));
            out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
        }
    }
    return out;
}

std::u16string utf16_units(char32_t code_point) {
    if (code_point < 0x10000) {
        return {static_cast<char16_t>(code_point)};
    }
    const char32_t offset = code_point - 0x10000;
    return {static_cast<char16_t>(0xD800 + (offset >> 10)),
            static_cast<char16_t>(0xDC00 + (offset & 0x3FF))};
}

std::u32string utf16_to_code_points(std::u16string_view units) {
    std::u32string out;
    for (std::size_t i = 0; i < units.size(); ++i) {
        const char32_t unit = units[i];
        const bool high = unit >= 0xD800 && unit <= 0xDBFF;
        const bool has_low =
            high && i + 1 < units.size() && units[i + 1] >= 0xDC00 && units[i + 1] <= 0xDFFF;
        if (has_low) {
            out.push_back(0x10000 + ((unit - 0xD800) << 10) + (units[++i] - 0xDC00));
        } else {
            out.push_back(is_surrogate(unit) ? kReplacement : unit);
        }
    }
    return out;
}

}  // namespace otpbox::gsm
