#include "otpbox/gsm/gsm_alphabet.hpp"

#include <array>

namespace otpbox::gsm {
namespace {

constexpr std::uint8_t kEscape = 0x1B;

// TS 23.038 6.2.1, indexed by septet. The escape position holds a space: it
// is what a receiver shows for an escape that starts no known pair.
constexpr std::array<char32_t, 128> kDefaultTable = {
    U'@',      U'\u00A3', U'$',      U'\u00A5', U'\u00E8', U'\u00E9', U'\u00F9', U'\u00EC',
    U'\u00F2', U'\u00C7', U'\n',     U'\u00D8', U'\u00F8', U'\r',     U'\u00C5', U'\u00E5',
    U'\u0394', U'_',      U'\u03A6', U'\u0393', U'\u039B', U'\u03A9', U'\u03A0', U'\u03A8',
    U'\u03A3', U'\u0398', U'\u039E', U' ',      U'\u00C6', U'\u00E6', U'\u00DF', U'\u00C9',
    U' ',      U'!',      U'"',      U'#',      U'\u00A4', U'%',      U'&',      U'\'',
    U'(',      U')',      U'*',      U'+',      U',',      U'-',      U'.',      U'/',
    U'0',      U'1',      U'2',      U'3',      U'4',      U'5',      U'6',      U'7',
    U'8',      U'9',      U':',      U';',      U'<',      U'=',      U'>',      U'?',
    U'\u00A1', U'A',      U'B',      U'C',      U'D',      U'E',      U'F',      U'G',
    U'H',      U'I',      U'J',      U'K',      U'L',      U'M',      U'N',      U'O',
    U'P',      U'Q',      U'R',      U'S',      U'T',      U'U',      U'V',      U'W',
    U'X',      U'Y',      U'Z',      U'\u00C4', U'\u00D6', U'\u00D1', U'\u00DC', U'\u00A7',
    U'\u00BF', U'a',      U'b',      U'c',      U'd',      U'e',      U'f',      U'g',
    U'h',      U'i',      U'j',      U'k',      U'l',      U'm',      U'n',      U'o',
    U'p',      U'q',      U'r',      U's',      U't',      U'u',      U'v',      U'w',
    U'x',      U'y',      U'z',      U'\u00E4', U'\u00F6', U'\u00F1', U'\u00FC', U'\u00E0',
};

struct ExtensionEntry {
    std::uint8_t code;
    char32_t character;
};

// TS 23.038 6.2.1.1: the characters reached through the escape.
constexpr std::array<ExtensionEntry, 10> kExtensionTable = {{
    {0x0A, U'\f'},
    {0x14, U'^'},
    {0x28, U'{'},
    {0x29, U'}'},
    {0x2F, U'\\'},
    {0x3C, U'['},
    {0x3D, U'~'},
    {0x3E, U']'},
    {0x40, U'|'},
    {0x65, U'\u20AC'},
}};

}  // namespace

std::vector<std::uint8_t> gsm7_septets(char32_t code_point) {
    for (std::size_t i = 0; i < kDefaultTable.size(); ++i) {
        if (kDefaultTable[i] == code_point && i != kEscape) {
            return {static_cast<std::uint8_t>(i)};
        }
    }
    for (const auto& entry : kExtensionTable) {
        if (entry.character == code_point) {
            return {kEscape, entry.code};
        }
    }
    return {};
}

std::u32string gsm7_to_code_points(std::span<const std::uint8_t> septets) {
    std::u32string out;
    for (std::size_t i = 0; i < septets.size(); ++i) {
        const std::uint8_t septet = septets[i] & 0x7F;
        if (septet != kEscape || i + 1 == septets.size()) {
            out.push_back(kDefaultTable[septet]);
            continue;
        }
        const std::uint8_t code = septets[++i] & 0x7F;
        char32_t character = kDefaultTable[code];
        for (const auto& entry : kExtensionTable) {
            if (entry.code == code) {
                character = entry.character;
            }
        }
        out.push_back(character);
    }
    return out;
}

}  // namespace otpbox::gsm
