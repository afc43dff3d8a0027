#pragma once

// SMS PDUs of 3GPP TS 23.040 with the alphabets of TS 23.038: SMS-SUBMIT to
// send, SMS-STATUS-REPORT to track delivery. Hex strings as AT+CMGS takes
// them in PDU mode (TS 27.005 3.5.1), the SMSC field first.

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace otpbox::gsm {

class PduError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct SubmitOptions {
    std::optional<std::chrono::minutes> validity;  // relative validity period
    bool status_report = true;                     // TP-SRR
    std::uint8_t message_reference = 0;            // TP-MR; modems usually set their own
    std::uint8_t concat_reference = 0;             // reference of a concatenated message
};

struct SubmitPart {
    std::string hex;          // whole PDU, "00" SMSC field (SMSC from the SIM) first
    std::size_t tpdu_length;  // octets after the SMSC field: the length AT+CMGS wants
};

// Encodes text (UTF-8) to one or more SMS-SUBMIT parts: GSM 7-bit default
// alphabet with its extension table where every character fits, UCS-2
// otherwise; a user data header joins parts (153 septets or 67 UCS-2
// characters each). to is E.164 ("+49...", international) or national digits.
[[nodiscard]] std::vector<SubmitPart> encode_submit(std::string_view to, std::string_view text,
                                                    const SubmitOptions& options = {});

struct Concatenation {
    std::uint16_t reference = 0;
    std::uint8_t total = 1;
    std::uint8_t sequence = 1;
};

struct DecodedSubmit {
    std::string smsc;  // "" when the SIM's is used
    std::string to;    // "+27820001111" for international, digits for national
    std::string text;  // UTF-8
    std::uint8_t message_reference = 0;
    bool status_report = false;
    std::optional<std::chrono::minutes> validity;
    std::optional<Concatenation> concatenation;
    bool ucs2 = false;
};

// Throws PduError on anything malformed. 8-bit (binary) user data is refused
// too: otpbox only ever sends text.
[[nodiscard]] DecodedSubmit decode_submit(std::string_view hex);

enum class DeliveryClass { delivered, temporary, permanent };

struct StatusReport {
    std::uint8_t message_reference = 0;
    std::string recipient;
    std::uint8_t status = 0;  // TP-ST, TS 23.040 9.2.3.15
    DeliveryClass delivery = DeliveryClass::delivered;
};

// Decodes an SMS-STATUS-REPORT as a +CDS line's PDU carries it (SMSC field
// first). Throws PduError on anything malformed.
[[nodiscard]] StatusReport decode_status_report(std::string_view hex);

// Encodes one, for the simulator and tests.
[[nodiscard]] std::string encode_status_report(const StatusReport& report);

}  // namespace otpbox::gsm
