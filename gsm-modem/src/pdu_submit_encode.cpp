#include <algorithm>

#include "otpbox/gsm/gsm_alphabet.hpp"
#include "otpbox/gsm/pdu.hpp"
#include "pdu_fields.hpp"
#include "pdu_octets.hpp"

namespace otpbox::gsm {
namespace {

using detail::Alphabet;

// TS 23.040 9.2.3.16 and 9.2.3.24: 140 octets of user data make 160 septets
// or 70 UCS-2 characters; the 6-octet concatenation header leaves 153 or 67.
constexpr std::size_t kSingleSeptets = 160;
constexpr std::size_t kPartSeptets = 153;
constexpr std::size_t kSingleUcs2Units = 70;
constexpr std::size_t kPartUcs2Units = 67;
constexpr std::size_t kMaxParts = 255;

// One character's code units (septets, or UTF-16 units for UCS-2): a part
// boundary may fall between characters, never inside one, so an escape pair
// or a surrogate pair stays whole (TS 23.040 9.2.3.24.1).
using Character = std::vector<std::uint16_t>;

struct EncodedText {
    Alphabet alphabet = Alphabet::gsm7;
    std::vector<Character> characters;
};

[[nodiscard]] std::optional<std::vector<Character>> as_gsm7(std::u32string_view code_points) {
    std::vector<Character> characters;
    for (const char32_t c : code_points) {
        const auto septets = gsm7_septets(c);
        if (septets.empty()) {
            return std::nullopt;
        }
        characters.emplace_back(septets.begin(), septets.end());
    }
    return characters;
}

[[nodiscard]] std::vector<Character> as_ucs2(std::u32string_view code_points) {
    std::vector<Character> characters;
    for (const char32_t c : code_points) {
        const auto units = utf16_units(c);
        characters.emplace_back(units.begin(), units.end());
    }
    return characters;
}

[[nodiscard]] EncodedText encode_text(std::string_view text) {
    const auto code_points = utf8_to_code_points(text);
    if (!code_points) {
        throw PduError("text is not valid UTF-8");
    }
    if (auto gsm7 = as_gsm7(*code_points)) {
        return {Alphabet::gsm7, std::move(*gsm7)};
    }
    return {Alphabet::ucs2, as_ucs2(*code_points)};
}

[[nodiscard]] std::size_t unit_count(std::span<const Character> characters) {
    std::size_t count = 0;
    for (const auto& character : characters) {
        count += character.size();
    }
    return count;
}

// The code units of each part, filled greedily up to the part's limit.
[[nodiscard]] std::vector<std::vector<std::uint16_t>> split(const EncodedText& encoded) {
    const bool gsm7 = encoded.alphabet == Alphabet::gsm7;
    const std::size_t single = gsm7 ? kSingleSeptets : kSingleUcs2Units;
    const std::size_t limit =
        unit_count(encoded.characters) <= single ? single : (gsm7 ? kPartSeptets : kPartUcs2Units);

    std::vector<std::vector<std::uint16_t>> parts(1);
    for (const auto& character : encoded.characters) {
        if (parts.back().size() + character.size() > limit) {
            parts.emplace_back();
        }
        parts.back().insert(parts.back().end(), character.begin(), character.end());
    }
    if (parts.size() > kMaxParts) {
        throw PduError("text needs more than 255 parts");
    }
    return parts;
}

[[nodiscard]] std::vector<std::uint8_t> ucs2_octets(std::span<const std::uint16_t> units) {
    std::vector<std::uint8_t> octets;
    for (const std::uint16_t unit : units) {
        octets.push_back(static_cast<std::uint8_t>(unit >> 8));
        octets.push_back(static_cast<std::uint8_t>(unit & 0xFF));
    }
    return octets;
}

// TP-UDL and TP-UD: UDL counts septets for GSM 7-bit, header included, and
// octets otherwise (TS 23.040 9.2.3.16).
void append_user_data(std::vector<std::uint8_t>& tpdu, Alphabet alphabet,
                      std::span<const std::uint8_t> header, std::span<const std::uint16_t> units) {
    if (alphabet == Alphabet::gsm7) {
        const std::vector<std::uint8_t> septets(units.begin(), units.end());
        tpdu.push_back(
            static_cast<std::uint8_t>(detail::header_septets(header.size()) + septets.size()));
        const auto packed = detail::pack_septets(header, septets);
        tpdu.insert(tpdu.end(), packed.begin(), packed.end());
        return;
    }
    const auto octets = ucs2_octets(units);
    tpdu.push_back(static_cast<std::uint8_t>(header.size() + octets.size()));
    tpdu.insert(tpdu.end(), header.begin(), header.end());
    tpdu.insert(tpdu.end(), octets.begin(), octets.end());
}

[[nodiscard]] std::uint8_t first_octet(const SubmitOptions& options, bool has_header) {
    std::uint8_t first = detail::kMtiSubmit;
    if (options.validity) {
        first |= detail::kVpfRelative;
    }
    if (options.status_report) {
        first |= detail::kStatusReportRequest;
    }
    if (has_header) {
        first |= detail::kUserDataHeader;
    }
    return first;
}

[[nodiscard]] SubmitPart encode_part(std::string_view to, Alphabet alphabet,
                                     std::span<const std::uint8_t> header,
                                     std::span<const std::uint16_t> units,
                                     const SubmitOptions& options) {
    std::vector<std::uint8_t> tpdu;
    tpdu.push_back(first_octet(options, !header.empty()));
    tpdu.push_back(options.message_reference);
    detail::append_address(tpdu, to);
    tpdu.push_back(0x00);  // TP-PID: plain short message
    tpdu.push_back(alphabet == Alphabet::gsm7 ? detail::kDcsGsm7 : detail::kDcsUcs2);
    if (options.validity) {
        tpdu.push_back(detail::encode_validity(*options.validity));
    }
    append_user_data(tpdu, alphabet, header, units);
    // "00": no SMSC address, the modem takes the SIM's (TS 27.005 3.5.1).
    return {"00" + detail::to_hex(tpdu), tpdu.size()};
}

}  // namespace

std::vector<SubmitPart> encode_submit(std::string_view to, std::string_view text,
                                      const SubmitOptions& options) {
    const auto encoded = encode_text(text);
    const auto parts = split(encoded);
    const auto total = static_cast<std::uint8_t>(parts.size());

    std::vector<SubmitPart> out;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        const auto header = total == 1
                                ? std::vector<std::uint8_t>{}
                                : detail::concatenation_header(options.concat_reference, total,
                                                               static_cast<std::uint8_t>(i + 1));
        out.push_back(encode_part(to, encoded.alphabet, header, parts[i], options));
    }
    return out;
}

}  // namespace otpbox::gsm
