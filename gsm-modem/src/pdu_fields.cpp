#include "pdu_fields.hpp"

#include <algorithm>

namespace otpbox::gsm::detail {
namespace {

constexpr std::uint8_t kIeiConcat8 = 0x00;
constexpr std::uint8_t kIeiConcat16 = 0x08;

constexpr std::int64_t kMinutesPerDay = 24 * 60;
constexpr std::int64_t kMinutesPerWeek = 7 * kMinutesPerDay;

[[nodiscard]] std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
    return (a + b - 1) / b;
}

[[nodiscard]] std::optional<Concatenation> concatenation_from(std::uint8_t iei,
                                                              std::span<const std::uint8_t> data) {
    Concatenation concat;
    if (iei == kIeiConcat8 && data.size() == 3) {
        concat = {data[0], data[1], data[2]};
    } else if (iei == kIeiConcat16 && data.size() == 4) {
        concat = {static_cast<std::uint16_t>(data[0] << 8 | data[1]), data[2], data[3]};
    } else {
        return std::nullopt;
    }
    if (concat.total == 0 || concat.sequence == 0 || concat.sequence > concat.total) {
        throw PduError("concatenation element out of range");
    }
    return concat;
}

}  // namespace

std::uint8_t encode_validity(std::chrono::minutes validity) {
    const std::int64_t minutes = std::max<std::int64_t>(validity.count(), 5);
    std::int64_t vp = 0;
    if (minutes <= 12 * 60) {
        vp = ceil_div(minutes, 5) - 1;
    } else if (minutes <= kMinutesPerDay) {
        vp = 143 + ceil_div(minutes - 12 * 60, 30);
    } else if (minutes <= 30 * kMinutesPerDay) {
        vp = 166 + ceil_div(minutes, kMinutesPerDay);
    } else {
        vp = 192 + ceil_div(minutes, kMinutesPerWeek);
    }
    return static_cast<std::uint8_t>(std::min<std::int64_t>(vp, 255));
}

std::chrono::minutes decode_validity(std::uint8_t vp) {
    if (vp <= 143) {
        return std::chrono::minutes((vp + 1) * 5);
    }
    if (vp <= 167) {
        return std::chrono::minutes(12 * 60 + (vp - 143) * 30);
    }
    if (vp <= 196) {
        return std::chrono::minutes((vp - 166) * kMinutesPerDay);
    }
    return std::chrono::minutes((vp - 192) * kMinutesPerWeek);
}

Alphabet alphabet_of(std::uint8_t dcs) {
    const std::uint8_t group = dcs >> 4;
    if (group <= 0x03) {
        // General data coding: bit 5 set means compressed (TS 23.038 4).
        if ((dcs & 0x20) != 0) {
            throw PduError("compressed user data is not supported");
        }
        const std::uint8_t alphabet = (dcs >> 2) & 0x03;
        if (alphabet == 0x03) {
            throw PduError("reserved alphabet in the data coding scheme");
        }
        return alphabet == 0 ? Alphabet::gsm7
                             : (alphabet == 1 ? Alphabet::eight_bit : Alphabet::ucs2);
    }
    if (group == 0x0C || group == 0x0D) {
        return Alphabet::gsm7;
    }
    if (group == 0x0E) {
        return Alphabet::ucs2;
    }
    if (group == 0x0F) {
        return (dcs & 0x04) != 0 ? Alphabet::eight_bit : Alphabet::gsm7;
    }
    throw PduError("reserved data coding group");
}

std::vector<std::uint8_t> concatenation_header(std::uint8_t reference, std::uint8_t total,
                                               std::uint8_t sequence) {
    return {0x05, kIeiConcat8, 0x03, reference, total, sequence};
}

std::optional<Concatenation> find_concatenation(std::span<const std::uint8_t> header) {
    std::optional<Concatenation> found;
    std::size_t i = 0;
    while (i < header.size()) {
        if (i + 2 > header.size() || i + 2 + header[i + 1] > header.size()) {
            throw PduError("user data header element runs past the header");
        }
        const auto data = header.subspan(i + 2, header[i + 1]);
        if (auto concat = concatenation_from(header[i], data)) {
            found = concat;
        }
        i += 2 + data.size();
    }
    return found;
}

}  // namespace otpbox::gsm::detail
