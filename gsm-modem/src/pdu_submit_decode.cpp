#include "otpbox/gsm/gsm_alphabet.hpp"
#include "otpbox/gsm/pdu.hpp"
#include "pdu_fields.hpp"
#include "pdu_octets.hpp"

namespace otpbox::gsm {
namespace {

using detail::Alphabet;

// TS 23.040 9.2.3.16: at most 160 septets or 140 octets.
constexpr std::size_t kMaxSeptets = 160;
constexpr std::size_t kMaxOctets = 140;
// TS 23.040 9.2.3.12.2 and 9.2.3.12.3: absolute and enhanced formats.
constexpr std::size_t kLongValidityOctets = 7;

[[nodiscard]] std::optional<std::chrono::minutes> read_validity(detail::OctetReader& reader,
                                                                std::uint8_t first) {
    const std::uint8_t format = first & detail::kVpfMask;
    if (format == detail::kVpfRelative) {
        return detail::decode_validity(reader.next("validity period"));
    }
    if (format != 0) {
        (void)reader.take(kLongValidityOctets, "validity period");
    }
    return std::nullopt;
}

[[nodiscard]] std::string ucs2_text(std::span<const std::uint8_t> octets) {
    if (octets.size() % 2 != 0) {
        throw PduError("UCS-2 user data has an odd number of octets");
    }
    std::u16string units;
    for (std::size_t i = 0; i < octets.size(); i += 2) {
        units.push_back(static_cast<char16_t>(octets[i] << 8 | octets[i + 1]));
    }
    return code_points_to_utf8(utf16_to_code_points(units));
}

// The user data header without its length octet; empty without TP-UDHI.
[[nodiscard]] std::span<const std::uint8_t> header_of(std::span<const std::uint8_t> user_data,
                                                      bool has_header) {
    if (!has_header) {
        return {};
    }
    if (user_data.empty() || user_data[0] + 1u > user_data.size()) {
        throw PduError("user data header longer than the user data");
    }
    return user_data.subspan(1, user_data[0]);
}

void read_user_data(detail::OctetReader& reader, Alphabet alphabet, bool has_header,
                    DecodedSubmit& out) {
    const std::size_t length = reader.next("user data length");
    const bool gsm7 = alphabet == Alphabet::gsm7;
    if (length > (gsm7 ? kMaxSeptets : kMaxOctets)) {
        throw PduError("user data length beyond 140 octets");
    }
    const std::size_t octet_count = gsm7 ? (length * 7 + 7) / 8 : length;
    const auto user_data = reader.take(octet_count, "user data");
    if (reader.remaining() != 0) {
        throw PduError("octets after the user data");
    }

    const auto header = header_of(user_data, has_header);
    out.concatenation = detail::find_concatenation(header);
    const std::size_t header_octets = has_header ? header.size() + 1 : 0;
    if (gsm7) {
        const std::size_t skip = detail::header_septets(header_octets);
        if (skip > length) {
            throw PduError("user data header longer than the user data");
        }
        const auto septets = detail::unpack_septets(user_data, length, skip);
        out.text = code_points_to_utf8(gsm7_to_code_points(septets));
    } else {
        out.text = ucs2_text(user_data.subspan(header_octets));
    }
}

}  // namespace

DecodedSubmit decode_submit(std::string_view hex) {
    const auto octets = detail::from_hex(hex);
    detail::OctetReader reader(octets);
    DecodedSubmit out;
    out.smsc = detail::read_smsc(reader);

    const std::uint8_t first = reader.next("first octet");
    if ((first & detail::kMtiMask) != detail::kMtiSubmit) {
        throw PduError("PDU is not an SMS-SUBMIT");
    }
    out.status_report = (first & detail::kStatusReportRequest) != 0;
    out.message_reference = reader.next("message reference");
    out.to = detail::read_address(reader);
    (void)reader.next("protocol identifier");
    const auto alphabet = detail::alphabet_of(reader.next("data coding scheme"));
    if (alphabet == Alphabet::eight_bit) {
        throw PduError("8-bit user data is not text");
    }
    out.ucs2 = alphabet == Alphabet::ucs2;
    out.validity = read_validity(reader, first);
    read_user_data(reader, alphabet, (first & detail::kUserDataHeader) != 0, out);
    return out;
}

}  // namespace otpbox::gsm
