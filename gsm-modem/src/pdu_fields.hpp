#pragma once

// TP fields that SMS-SUBMIT encoding and decoding share: validity period
// (TS 23.040 9.2.3.12.1), data coding scheme (TS 23.038 4) and the user data
// header's concatenation element (TS 23.040 9.2.3.24.1, 9.2.3.24.8).

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "otpbox/gsm/pdu.hpp"

namespace otpbox::gsm::detail {

// TS 23.040 9.2.3.1 to 9.2.3.5: bits of the first octet.
constexpr std::uint8_t kMtiMask = 0x03;
constexpr std::uint8_t kMtiSubmit = 0x01;
constexpr std::uint8_t kMtiStatusReport = 0x02;
constexpr std::uint8_t kVpfRelative = 0x10;
constexpr std::uint8_t kVpfMask = 0x18;
constexpr std::uint8_t kStatusReportRequest = 0x20;
constexpr std::uint8_t kUserDataHeader = 0x40;

constexpr std::uint8_t kDcsGsm7 = 0x00;
constexpr std::uint8_t kDcsUcs2 = 0x08;

enum class Alphabet { gsm7, eight_bit, ucs2 };

// The smallest TP-VP that keeps the message at least that long.
[[nodiscard]] std::uint8_t encode_validity(std::chrono::minutes validity);
[[nodiscard]] std::chrono::minutes decode_validity(std::uint8_t vp);

// Throws PduError for compressed text and reserved coding groups.
[[nodiscard]] Alphabet alphabet_of(std::uint8_t dcs);

// The whole header, length octet first.
[[nodiscard]] std::vector<std::uint8_t> concatenation_header(std::uint8_t reference,
                                                             std::uint8_t total,
                                                             std::uint8_t sequence);
// header without its length octet; nullopt when it holds no concatenation.
[[nodiscard]] std::optional<Concatenation> find_concatenation(std::span<const std::uint8_t> header);

}  // namespace otpbox::gsm::detail
