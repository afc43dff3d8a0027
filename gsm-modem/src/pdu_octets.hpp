#pragma once

// Octet-level pieces shared by the SMS-SUBMIT and SMS-STATUS-REPORT codecs:
// hex, semi-octet addresses (TS 23.040 9.1.2.3, 9.1.2.5), septet packing
// (TS 23.038 6.1.2.1.1) and a reader that refuses to run past the end.

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace otpbox::gsm::detail {

[[nodiscard]] std::string to_hex(std::span<const std::uint8_t> octets);
// Throws PduError on odd length or a character that is not a hex digit.
[[nodiscard]] std::vector<std::uint8_t> from_hex(std::string_view hex);

class OctetReader {
  public:
    explicit OctetReader(std::span<const std::uint8_t> octets) : m_octets(octets) {}

    // Both throw PduError naming what was cut off.
    [[nodiscard]] std::uint8_t next(std::string_view what);
    [[nodiscard]] std::span<const std::uint8_t> take(std::size_t count, std::string_view what);
    [[nodiscard]] std::size_t remaining() const { return m_octets.size() - m_position; }

  private:
    std::span<const std::uint8_t> m_octets;
    std::size_t m_position = 0;
};

// TP-DA / TP-RA: digit count, type of address, semi-octets. "+" gives an
// international number (0x91), plain digits a national one (0x81).
void append_address(std::vector<std::uint8_t>& out, std::string_view number);
[[nodiscard]] std::string read_address(OctetReader& reader);
// The SMSC field of TS 27.005 3.5.1: its length counts octets, not digits.
[[nodiscard]] std::string read_smsc(OctetReader& reader);

// Septets packed after header_octets octets of user data header, with the
// fill bits TS 23.040 9.2.3.24 asks for so the text starts on a septet.
[[nodiscard]] std::vector<std::uint8_t> pack_septets(std::span<const std::uint8_t> header,
                                                     std::span<const std::uint8_t> septets);
// septet_count septets of which the first skip_septets belong to the header.
[[nodiscard]] std::vector<std::uint8_t> unpack_septets(std::span<const std::uint8_t> octets,
                                                       std::size_t septet_count,
                                                       std::size_t skip_septets);
// Septets a user data header of that many octets (length octet included) takes.
[[nodiscard]] std::size_t header_septets(std::size_t header_octets);

// TP-SCTS / TP-DT: seven semi-octet fields, time zone in quarter hours.
void append_timestamp(std::vector<std::uint8_t>& out, std::chrono::system_clock::time_point when);

}  // namespace otpbox::gsm::detail
