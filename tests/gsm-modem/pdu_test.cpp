#include "otpbox/gsm/pdu.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <string>

namespace otpbox::gsm {
namespace {

using std::chrono::minutes;

// The default OTP template of the configuration with a code filled in.
constexpr std::string_view kDefaultSms =
    "Ihr Anmeldecode: 123456. Er gilt 10 Minuten. Geben Sie ihn nicht weiter.";

[[nodiscard]] SubmitOptions plain() {
    SubmitOptions options;
    options.status_report = false;
    return options;
}

[[nodiscard]] std::string joined_text(const std::vector<SubmitPart>& parts) {
    std::string text;
    for (const auto& part : parts) {
        text += decode_submit(part.hex).text;
    }
    return text;
}

TEST(Pdu_EncodeSubmit, HelloWorldKnownAnswer) {
    const auto parts = encode_submit("+27820001111", "Hello World!", plain());
    ASSERT_EQ(parts.size(), 1u);
    EXPECT_EQ(parts[0].hex, "0001000B917228001011F100000CC8329BFD065DDF72363904");
    EXPECT_EQ(parts[0].tpdu_length, 24u);
}

TEST(Pdu_EncodeSubmit, NationalNumberKnownAnswer) {
    const auto parts = encode_submit("09012345678", "How are you doing?", plain());
    ASSERT_EQ(parts.size(), 1u);
    EXPECT_EQ(parts[0].hex, "0001000B819010325476F8000012C8F71D14969741F9771D447EA7DDE71F");
}

TEST(Pdu_DecodeSubmit, HelloWorldKnownAnswer) {
    const auto decoded = decode_submit("0001000B917228001011F100000CC8329BFD065DDF72363904");
    EXPECT_EQ(decoded.smsc, "");
    EXPECT_EQ(decoded.to, "+27820001111");
    EXPECT_EQ(decoded.text, "Hello World!");
    EXPECT_FALSE(decoded.status_report);
    EXPECT_FALSE(decoded.validity.has_value());
    EXPECT_FALSE(decoded.concatenation.has_value());
    EXPECT_FALSE(decoded.ucs2);
}

TEST(Pdu_DecodeSubmit, NationalNumberKnownAnswer) {
    const auto decoded =
        decode_submit("0001000B819010325476F8000012C8F71D14969741F9771D447EA7DDE71F");
    EXPECT_EQ(decoded.to, "09012345678");
    EXPECT_EQ(decoded.text, "How are you doing?");
}

TEST(Pdu_DecodeSubmit, SmscAndValidityKnownAnswer) {
    const auto decoded = decode_submit(
        "07919130079229F011000B915155551532F400000036C834888E2ECBCB2E978B5A2F8362373A1AA40CBB413258"
        "4C0682D57433982B8603C1DB20D4B1495DC552200804028100");
    EXPECT_EQ(decoded.smsc, "+19037029920");
    EXPECT_EQ(decoded.to, "+15555551234");
    EXPECT_EQ(decoded.validity, minutes(5));
    EXPECT_EQ(decoded.text,
              "Hi there...Tue 17th Jan 2012 05:30.18 pm (GMT+1) "
              "\u0394\u0394\u0394\u0394\u0394");
}

TEST(Pdu_StatusReport, DecodesKnownAnswer) {
    const auto report =
        decode_status_report("0006D60B911326880736F4111011719551401110117195714000");
    EXPECT_EQ(report.message_reference, 214);
    EXPECT_EQ(report.recipient, "+31628870634");
    EXPECT_EQ(report.status, 0);
    EXPECT_EQ(report.delivery, DeliveryClass::delivered);
}

TEST(Pdu_StatusReport, RoundTripsAndClassifiesStatus) {
    const std::pair<std::uint8_t, DeliveryClass> cases[] = {{0x00, DeliveryClass::delivered},
                                                            {0x20, DeliveryClass::temporary},
                                                            {0x41, DeliveryClass::permanent},
                                                            {0x62, DeliveryClass::permanent}};
    for (const auto& [status, delivery] : cases) {
        const auto hex = encode_status_report({42, "+491701234567", status, delivery});
        const auto report = decode_status_report(hex);
        EXPECT_EQ(report.message_reference, 42);
        EXPECT_EQ(report.recipient, "+491701234567");
        EXPECT_EQ(report.status, status);
        EXPECT_EQ(report.delivery, delivery);
    }
}

TEST(Pdu_StatusReport, RefusesAnSmsSubmit) {
    EXPECT_THROW((void)decode_status_report("0001000B917228001011F100000CC8329BFD065DDF72363904"),
                 PduError);
}

TEST(Pdu_EncodeSubmit, GermanUmlautsStayInTheGsmAlphabet) {
    const std::string text = "Grüße aus Köln: Äpfel, Öl, Übung, ä ö ü ß é";
    const auto parts = encode_submit("+491701234567", text);
    ASSERT_EQ(parts.size(), 1u);
    const auto decoded = decode_submit(parts[0].hex);
    EXPECT_EQ(decoded.text, text);
    EXPECT_FALSE(decoded.ucs2);
}

TEST(Pdu_EncodeSubmit, EuroSignTakesTheExtensionTable) {
    const std::string text = "Preis: 5 € [netto] {x} ~ | \\ ^";
    const auto parts = encode_submit("+491701234567", text);
    ASSERT_EQ(parts.size(), 1u);
    const auto decoded = decode_submit(parts[0].hex);
    EXPECT_EQ(decoded.text, text);
    EXPECT_FALSE(decoded.ucs2);
    // 30 characters, 9 of them escaped: 39 septets (TP-UDL after DCS 00).
    EXPECT_NE(parts[0].hex.find("000027"), std::string::npos);
}

TEST(Pdu_EncodeSubmit, OptionsReachTheirFields) {
    SubmitOptions options;
    options.validity = minutes(10);
    options.status_report = true;
    options.message_reference = 7;
    const auto parts = encode_submit("+491701234567", "x", options);
    ASSERT_EQ(parts.size(), 1u);
    // First octet 0x31: SMS-SUBMIT, relative validity, status report; TP-VP 01 is 10 minutes.
    EXPECT_TRUE(parts[0].hex.starts_with("003107"));
    const auto decoded = decode_submit(parts[0].hex);
    EXPECT_TRUE(decoded.status_report);
    EXPECT_EQ(decoded.message_reference, 7);
    EXPECT_EQ(decoded.validity, minutes(10));
}

TEST(Pdu_EncodeSubmit, ValidityRoundsUpToTheNextStep) {
    const std::pair<int, int> cases[] = {{5, 5},           {10, 10},        {11, 15},
                                         {720, 720},       {721, 750},      {1440, 1440},
                                         {1441, 2880},     {43200, 43200},  {43201, 50400},
                                         {635040, 635040}, {999999, 635040}};
    for (const auto& [asked, granted] : cases) {
        SubmitOptions options = plain();
        options.validity = minutes(asked);
        const auto decoded = decode_submit(encode_submit("+491701234567", "x", options)[0].hex);
        EXPECT_EQ(decoded.validity, minutes(granted)) << asked;
    }
}

TEST(Pdu_EncodeSubmit, DefaultOtpTextFitsOnePartWithOneCode) {
    const auto parts = encode_submit("+491701234567", kDefaultSms);
    ASSERT_EQ(parts.size(), 1u);
    const auto text = decode_submit(parts[0].hex).text;
    EXPECT_EQ(text, kDefaultSms);
    const std::regex code("[0-9]{6,8}");
    EXPECT_EQ(
        std::distance(std::sregex_iterator(text.begin(), text.end(), code), std::sregex_iterator()),
        1);
}

TEST(Pdu_EncodeSubmit, OneSixtyCharactersFitOnePart) {
    const auto parts = encode_submit("+491701234567", std::string(160, 'a'));
    ASSERT_EQ(parts.size(), 1u);
    EXPECT_FALSE(decode_submit(parts[0].hex).concatenation.has_value());
}

TEST(Pdu_EncodeSubmit, OneSixtyOneCharactersTakeTwoParts) {
    SubmitOptions options;
    options.concat_reference = 0x5A;
    std::string text;
    for (int i = 0; i < 161; ++i) {
        text.push_back(static_cast<char>('a' + i % 26));
    }
    const auto parts = encode_submit("+491701234567", text, options);
    ASSERT_EQ(parts.size(), 2u);
    const auto first = decode_submit(parts[0].hex);
    const auto second = decode_submit(parts[1].hex);
    ASSERT_TRUE(first.concatenation && second.concatenation);
    EXPECT_EQ(first.concatenation->reference, 0x5A);
    EXPECT_EQ(first.concatenation->total, 2);
    EXPECT_EQ(first.concatenation->sequence, 1);
    EXPECT_EQ(second.concatenation->sequence, 2);
    EXPECT_EQ(first.text.size(), 153u);
    EXPECT_EQ(first.text + second.text, text);
    // TP-UDHI set: first octet 0x61 with status report, UDL 160 septets in part one.
    EXPECT_TRUE(parts[0].hex.starts_with("0061"));
    EXPECT_NE(parts[0].hex.find("0000A00500035A0201"), std::string::npos);
}

TEST(Pdu_EncodeSubmit, EscapePairIsNeverSplitBetweenParts) {
    // 152 plain characters, then a euro sign: its two septets do not fit
    // the 153 of part one, so the whole pair moves to part two.
    const std::string text = std::string(152, 'a') + "€" + std::string(20, 'b');
    const auto parts = encode_submit("+491701234567", text);
    ASSERT_EQ(parts.size(), 2u);
    EXPECT_EQ(decode_submit(parts[0].hex).text, std::string(152, 'a'));
    EXPECT_EQ(decode_submit(parts[1].hex).text, "€" + std::string(20, 'b'));
}

TEST(Pdu_EncodeSubmit, CharacterOutsideGsmGivesUcs2) {
    const std::string text = "Код: 123456 – gültig";
    const auto parts = encode_submit("+491701234567", text);
    ASSERT_EQ(parts.size(), 1u);
    const auto decoded = decode_submit(parts[0].hex);
    EXPECT_TRUE(decoded.ucs2);
    EXPECT_EQ(decoded.text, text);
}

TEST(Pdu_EncodeSubmit, SeventyUcs2CharactersFitOnePart) {
    const auto parts = encode_submit("+491701234567", "Ж" + std::string(69, 'a'));
    ASSERT_EQ(parts.size(), 1u);
    const auto two = encode_submit("+491701234567", "Ж" + std::string(70, 'a'));
    ASSERT_EQ(two.size(), 2u);
    EXPECT_EQ(decode_submit(two[0].hex).text, "Ж" + std::string(66, 'a'));
    EXPECT_EQ(decode_submit(two[1].hex).text, std::string(4, 'a'));
}

TEST(Pdu_EncodeSubmit, LongUcs2TextSplitsAtSixtySevenCharacters) {
    std::string text;
    for (int i = 0; i < 140; ++i) {
        text += i % 2 == 0 ? "Ж" : "ü";
    }
    const auto parts = encode_submit("+491701234567", text);
    ASSERT_EQ(parts.size(), 3u);
    const auto first = decode_submit(parts[0].hex);
    EXPECT_TRUE(first.ucs2);
    EXPECT_EQ(first.concatenation->total, 3);
    EXPECT_EQ(first.text.size(), 67u * 2);
    EXPECT_EQ(joined_text(parts), text);
}

TEST(Pdu_EncodeSubmit, SurrogatePairIsNeverSplitBetweenParts) {
    const std::string text = std::string(66, 'a') + "😀" + std::string(10, 'b');
    const auto parts = encode_submit("+491701234567", text);
    ASSERT_EQ(parts.size(), 2u);
    EXPECT_EQ(decode_submit(parts[0].hex).text, std::string(66, 'a'));
    EXPECT_EQ(joined_text(parts), text);
}

TEST(Pdu_EncodeSubmit, EmptyTextIsOneEmptyPart) {
    const auto parts = encode_submit("+491701234567", "");
    ASSERT_EQ(parts.size(), 1u);
    EXPECT_EQ(decode_submit(parts[0].hex).text, "");
}

TEST(Pdu_EncodeSubmit, RefusesBadInput) {
    EXPECT_THROW((void)encode_submit("+49170abc", "x"), PduError);
    EXPECT_THROW((void)encode_submit("", "x"), PduError);
    EXPECT_THROW((void)encode_submit("+491701234567", "\xC3\x28"), PduError);
    EXPECT_THROW((void)encode_submit("+491701234567", std::string(256 * 153, 'a')), PduError);
}

TEST(Pdu_DecodeSubmit, RefusesMalformedHex) {
    const char* cases[] = {
        "0",                                                     // odd length
        "0G01",                                                  // not hex
        "",                                                      // nothing
        "00",                                                    // SMSC only
        "0001000B917228001011F100000CC8329BFD065DDF723639",      // user data cut short
        "0001000B917228001011F100000CC8329BFD065DDF7236390400",  // trailing octet
        "0002000B917228001011F100000CC8329BFD065DDF72363904",    // not a SUBMIT
        "0001001B917228001011F100000CC8329BFD065DDF72363904",    // address too long
        "0001000B917228001011F10000A1C8",                        // UDL beyond 160
        "0041000B917228001011F1000001FF",                        // header past the data
        "0001000B917228001011F1000401AA",                        // 8-bit data
        "0001000B917228001011F1000801AA",                        // odd UCS-2
    };
    for (const char* hex : cases) {
        EXPECT_THROW((void)decode_submit(hex), PduError) << hex;
    }
}

}  // namespace
}  // namespace otpbox::gsm
