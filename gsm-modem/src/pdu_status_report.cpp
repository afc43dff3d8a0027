#include "otpbox/gsm/pdu.hpp"
#include "pdu_fields.hpp"
#include "pdu_octets.hpp"

namespace otpbox::gsm {
namespace {

// TS 23.040 9.2.3.11 and 9.2.3.13: TP-SCTS and TP-DT, 7 octets each.
constexpr std::size_t kTimestampOctets = 7;
// TS 23.040 9.2.2.3: TP-MMS set says no more messages are waiting.
constexpr std::uint8_t kNoMoreMessages = 0x04;

// TS 23.040 9.2.3.15: 0x00-0x1F completed, 0x20-0x3F still trying,
// 0x40-0x5F permanent, 0x60-0x7F temporary but given up: final, so the
// message failed. Reserved values count as failed as well.
[[nodiscard]] DeliveryClass classify_status(std::uint8_t status) {
    if (status <= 0x1F) {
        return DeliveryClass::delivered;
    }
    if (status <= 0x3F) {
        return DeliveryClass::temporary;
    }
    return DeliveryClass::permanent;
}

}  // namespace

StatusReport decode_status_report(std::string_view hex) {
    const auto octets = detail::from_hex(hex);
    detail::OctetReader reader(octets);
    (void)detail::read_smsc(reader);

    const std::uint8_t first = reader.next("first octet");
    if ((first & detail::kMtiMask) != detail::kMtiStatusReport) {
        throw PduError("PDU is not an SMS-STATUS-REPORT");
    }
    StatusReport report;
    report.message_reference = reader.next("message reference");
    report.recipient = detail::read_address(reader);
    (void)reader.take(kTimestampOctets, "service centre time stamp");
    (void)reader.take(kTimestampOctets, "discharge time");
    report.status = reader.next("status");
    report.delivery = classify_status(report.status);
    // Optional TP-PI, TP-PID, TP-DCS and TP-UD may follow; nothing needs them.
    return report;
}

std::string encode_status_report(const StatusReport& report) {
    std::vector<std::uint8_t> tpdu;
    tpdu.push_back(detail::kMtiStatusReport | kNoMoreMessages);
    tpdu.push_back(report.message_reference);
    detail::append_address(tpdu, report.recipient);
    const auto now = std::chrono::system_clock::now();
    detail::append_timestamp(tpdu, now);
    detail::append_timestamp(tpdu, now);
    tpdu.push_back(report.status);
    return "00" + detail::to_hex(tpdu);
}

}  // namespace otpbox::gsm
