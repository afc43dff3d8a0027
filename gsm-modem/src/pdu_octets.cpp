#include "pdu_octets.hpp"

#include <ctime>

#include "otpbox/gsm/gsm_alphabet.hpp"
#include "otpbox/gsm/pdu.hpp"

namespace otpbox::gsm::detail {
namespace {

constexpr std::uint8_t kInternational = 0x91;
constexpr std::uint8_t kNational = 0x81;
constexpr std::uint8_t kTypeOfNumberMask = 0x70;
constexpr std::uint8_t kTypeInternational = 0x10;
constexpr std::uint8_t kTypeAlphanumeric = 0x50;
// TS 23.040 9.1.2.5: at most 20 digits fit the 10 address octets.
constexpr std::size_t kMaxAddressDigits = 20;
// Semi-octet values 10 to 14 stand for these (TS 24.008 10.5.4.7).
constexpr std::string_view kSemiOctetDigits = "0123456789*#abc";

[[nodiscard]] int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

[[nodiscard]] std::string semi_octet_digits(std::span<const std::uint8_t> octets,
                                            std::size_t digit_count) {
    std::string digits;
    for (std::size_t i = 0; i < digit_count; ++i) {
        const std::uint8_t octet = octets[i / 2];
        const std::uint8_t nibble = i % 2 == 0 ? octet & 0x0F : octet >> 4;
        if (nibble >= kSemiOctetDigits.size()) {
            throw PduError("address holds a fill nibble inside its digits");
        }
        digits.push_back(kSemiOctetDigits[nibble]);
    }
    return digits;
}

[[nodiscard]] std::string alphanumeric_address(std::span<const std::uint8_t> octets,
                                               std::size_t semi_octets) {
    const auto septets = unpack_septets(octets, semi_octets * 4 / 7, 0);
    return code_points_to_utf8(gsm7_to_code_points(septets));
}

[[nodiscard]] std::string address_text(std::uint8_t type, std::span<const std::uint8_t> octets,
                                       std::size_t semi_octets) {
    if ((type & kTypeOfNumberMask) == kTypeAlphanumeric) {
        return alphanumeric_address(octets, semi_octets);
    }
    const auto digits = semi_octet_digits(octets, semi_octets);
    return (type & kTypeOfNumberMask) == kTypeInternational ? "+" + digits : digits;
}

[[nodiscard]] std::uint8_t two_digits(int value) {
    return static_cast<std::uint8_t>((value % 10) << 4 | (value / 10 % 10));
}

}  // namespace

std::string to_hex(std::span<const std::uint8_t> octets) {
    constexpr std::string_view kDigits = "0123456789ABCDEF";
    std::string hex;
    hex.reserve(octets.size() * 2);
    for (const std::uint8_t octet : octets) {
        hex.push_back(kDigits[octet >> 4]);
        hex.push_back(kDigits[octet & 0x0F]);
    }
    return hex;
}

std::vector<std::uint8_t> from_hex(std::string_view hex) {
    if (hex.size() % 2 != 0) {
        throw PduError("hex PDU has an odd number of digits");
    }
    std::vector<std::uint8_t> octets;
    octets.reserve(hex.size() / 2);
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        const int high = hex_value(hex[i]);
        const int low = hex_value(hex[i + 1]);
        if (high < 0 || low < 0) {
            throw PduError("hex PDU holds a character that is not a hex digit");
        }
        octets.push_back(static_cast<std::uint8_t>(high << 4 | low));
    }
    return octets;
}

std::uint8_t OctetReader::next(std::string_view what) {
    return take(1, what).front();
}

std::span<const std::uint8_t> OctetReader::take(std::size_t count, std::string_view what) {
    if (count > remaining()) {
        throw PduError("PDU ends inside " + std::string(what));
    }
    const auto part = m_octets.subspan(m_position, count);
    m_position += count;
    return part;
}

void append_address(std::vector<std::uint8_t>& out, std::string_view number) {
    const bool international = number.starts_with('+');
    const auto digits = international ? number.substr(1) : number;
    if (digits.empty() || digits.size() > kMaxAddressDigits ||
        digits.find_first_not_of("0123456789") != std::string_view::npos) {
        throw PduError("destination is not a phone number");
    }
    out.push_back(static_cast<std::uint8_t>(digits.size()));
    out.push_back(international ? kInternational : kNational);
    for (std::size_t i = 0; i < digits.size(); i += 2) {
        const auto low = static_cast<std::uint8_t>(digits[i] - '0');
        const auto high =
            i + 1 < digits.size() ? static_cast<std::uint8_t>(digits[i + 1] - '0') : 0x0F;
        out.push_back(static_cast<std::uint8_t>(high << 4 | low));
    }
}

std::string read_address(OctetReader& reader) {
    const std::size_t semi_octets = reader.next("address length");
    if (semi_octets > kMaxAddressDigits) {
        throw PduError("address longer than 20 digits");
    }
    const std::uint8_t type = reader.next("type of address");
    const auto octets = reader.take((semi_octets + 1) / 2, "address");
    return address_text(type, octets, semi_octets);
}

std::string read_smsc(OctetReader& reader) {
    const std::size_t length = reader.next("SMSC length");
    if (length == 0) {
        return {};
    }
    if (length > 1 + kMaxAddressDigits / 2) {
        throw PduError("SMSC address too long");
    }
    const std::uint8_t type = reader.next("SMSC type of address");
    const auto octets = reader.take(length - 1, "SMSC address");
    std::size_t digits = octets.size() * 2;
    if (digits > 0 && (octets.back() >> 4) == 0x0F) {
        --digits;
    }
    return address_text(type, octets, digits);
}

std::size_t header_septets(std::size_t header_octets) {
    return (header_octets * 8 + 6) / 7;
}

std::vector<std::uint8_t> pack_septets(std::span<const std::uint8_t> header,
                                       std::span<const std::uint8_t> septets) {
    const std::size_t start_bit = header_septets(header.size()) * 7;
    const std::size_t total_bits = start_bit + septets.size() * 7;
    std::vector<std::uint8_t> out((total_bits + 7) / 8, 0);
    std::copy(header.begin(), header.end(), out.begin());
    for (std::size_t i = 0; i < septets.size(); ++i) {
        const std::size_t bit = start_bit + i * 7;
        const unsigned value = septets[i] & 0x7Fu;
        out[bit / 8] |= static_cast<std::uint8_t>(value << (bit % 8));
        if (bit % 8 > 1) {
            out[bit / 8 + 1] |= static_cast<std::uint8_t>(value >> (8 - bit % 8));
        }
    }
    return out;
}

std::vector<std::uint8_t> unpack_septets(std::span<const std::uint8_t> octets,
                                         std::size_t septet_count, std::size_t skip_septets) {
    if ((septet_count * 7 + 7) / 8 > octets.size()) {
        throw PduError("user data shorter than its length says");
    }
    std::vector<std::uint8_t> septets;
    for (std::size_t i = skip_septets; i < septet_count; ++i) {
        const std::size_t bit = i * 7;
        unsigned value = octets[bit / 8] >> (bit % 8);
        if (bit % 8 > 1) {
            value |= static_cast<unsigned>(octets[bit / 8 + 1]) << (8 - bit % 8);
        }
        septets.push_back(static_cast<std::uint8_t>(value & 0x7F));
    }
    return septets;
}

void append_timestamp(std::vector<std::uint8_t>& out, std::chrono::system_clock::time_point when) {
    const std::time_t seconds = std::chrono::system_clock::to_time_t(when);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    for (const int field :
         {utc.tm_year % 100, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, 0}) {
        out.push_back(two_digits(field));
    }
}

}  // namespace otpbox::gsm::detail
