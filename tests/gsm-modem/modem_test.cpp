// A modem's initialisation, PIN handling, registration and sending, against
// a scripted SIM modem on a real pseudo-terminal pair.

#include <gtest/gtest.h>
#include <optional>

#include "otpbox/gsm/at_error.hpp"
#include "otpbox/gsm/modem.hpp"
#include "scripted_modem.hpp"
#include "test_support.hpp"

namespace otpbox::gsm {
namespace {

using namespace std::chrono_literals;
using fake::ScriptedModem;
using fake::SimBehaviour;

std::size_t count(const std::string& haystack, std::string_view needle) {
    std::size_t found = 0;
    for (auto at = haystack.find(needle); at != std::string::npos;
         at = haystack.find(needle, at + 1)) {
        ++found;
    }
    return found;
}

ModemConfig config_for(const ScriptedModem& fake, std::optional<std::string> pin = {}) {
    ModemConfig config;
    config.name = "modem0";
    config.device = fake.settings().device;
    config.sim_pin = std::move(pin);
    config.command_timeout = 1s;
    config.send_timeout = 2s;
    config.registration_wait = 1s;
    return config;
}

AtErrc open_error(Modem& modem) {
    try {
        modem.open();
    } catch (const AtError& error) {
        if (error.code().category() == at_category()) {
            return static_cast<AtErrc>(error.code().value());
        }
        ADD_FAILURE() << error.what();
    }
    return AtErrc{};
}

// The port's lock is the modem's own: opening an open modem again reopens
// it instead of finding its own lock and blaming another program.
TEST(Modem_Open, OpeningAnOpenModemAgainReopensIt) {
    ScriptedModem fake(fake::sim_modem({}));
    Modem modem(config_for(fake));
    modem.open();

    modem.open();

    EXPECT_TRUE(modem.is_open());
    EXPECT_EQ(count(fake.received(), "AT+CMGF=0\r"), 2u);
}

// Opening drops a stale OK, not a delivery report that waited on the line
// (one that came while the modem was reset, or while otpboxd was down).
TEST(Modem_Open, KeepsADeliveryReportWaitingOnTheLine) {
    ScriptedModem fake(fake::sim_modem({}));
    Modem modem(config_for(fake));
    const auto pdu = encode_status_report({43, "+491701234567", 0, DeliveryClass::delivered});
    fake.write("\r\n+CDS: " + std::to_string(pdu.size() / 2 - 1) + "\r\n" + pdu + "\r\n");

    modem.open();

    const auto reports = modem.take_status_reports();
    ASSERT_EQ(reports.size(), 1u);
    EXPECT_EQ(reports[0].message_reference, 43);
}

TEST(Modem_Open, InitialisesPduModeAndDeliveryReports) {
    ScriptedModem fake(fake::sim_modem({}));
    Modem modem(config_for(fake));

    modem.open();

    const auto seen = fake.received();
    const auto order = {"ATE0\r",     "AT+CMEE=1\r", "AT+CPIN?\r",
                        "AT+CREG?\r", "AT+CMGF=0\r", "AT+CNMI=2,1,0,1,0\r"};
    std::size_t last = 0;
    for (const auto* command : order) {
        const auto at = seen.find(command, last);
        ASSERT_NE(at, std::string::npos) << command;
        last = at;
    }
    EXPECT_EQ(modem.registration(), Registration::home);
    EXPECT_EQ(modem.signal_rssi(), 17);
}

TEST(Modem_Open, EntersThePinAndWaitsOutSimBusy) {
    ScriptedModem fake(fake::sim_modem({.pin = "4711", .busy_after_pin = 2}));
    Modem modem(config_for(fake, "4711"));

    EXPECT_NO_THROW(modem.open());

    EXPECT_EQ(count(fake.received(), "AT+CPIN=\"4711\""), 1u);
}

TEST(Modem_Open, RefusedPinIsNeverTriedTwice) {
    ScriptedModem fake(fake::sim_modem({.pin = "4711"}));
    Modem modem(config_for(fake, "0000"));

    EXPECT_EQ(open_error(modem), AtErrc::sim_locked);
    EXPECT_EQ(open_error(modem), AtErrc::sim_locked);

    EXPECT_EQ(count(fake.received(), "AT+CPIN=\""), 2u) << "one try per open() only";
    EXPECT_FALSE(modem.is_open());
}

TEST(Modem_Open, PukRequestStopsWithoutAnyPin) {
    ScriptedModem fake(fake::sim_modem({.puk = true}));
    Modem modem(config_for(fake, "4711"));

    EXPECT_EQ(open_error(modem), AtErrc::sim_locked);
    EXPECT_EQ(count(fake.received(), "AT+CPIN=\""), 0u);
}

TEST(Modem_Open, PinAskedButNoneConfiguredStops) {
    ScriptedModem fake(fake::sim_modem({.pin = "4711"}));
    Modem modem(config_for(fake));

    EXPECT_EQ(open_error(modem), AtErrc::sim_locked);
}

TEST(Modem_Open, NoRegistrationFails) {
    ScriptedModem fake(fake::sim_modem({.creg = 2, .cereg = 3}));
    Modem modem(config_for(fake));

    EXPECT_EQ(open_error(modem), AtErrc::not_registered);
    EXPECT_EQ(modem.registration(), Registration::denied);
}

TEST(Modem_Open, RoamingOnLteIsEnough) {
    ScriptedModem fake(fake::sim_modem({.creg = 0, .cereg = 5}));
    Modem modem(config_for(fake));

    EXPECT_NO_THROW(modem.open());
    EXPECT_EQ(modem.registration(), Registration::roaming);
}

TEST(Modem_Open, SilentModemTimesOut) {
    ScriptedModem fake([](const std::string&) { return std::string(); });
    auto config = config_for(fake);
    config.command_timeout = 200ms;
    Modem modem(config);

    EXPECT_EQ(open_error(modem), AtErrc::timeout);
    EXPECT_EQ(count(fake.received(), "AT\r"), 3u) << "AT is tried three times";
}

TEST(Modem_Send, RecordsEachPartsReference) {
    ScriptedModem fake(fake::sim_modem({}));
    Modem modem(config_for(fake));
    modem.open();
    std::vector<std::pair<std::size_t, std::size_t>> parts;

    modem.send("+491701234567", std::string(200, 'a'), {},
               [&](std::size_t part, std::size_t total, std::uint8_t) {
                   parts.emplace_back(part, total);
               });

    ASSERT_EQ(parts.size(), 2u);
    EXPECT_EQ(parts[1], std::make_pair(std::size_t{1}, std::size_t{2}));
    EXPECT_EQ(count(fake.received(), "\x1a"), 2u);
}

// A two-part SMS whose sending fails: the error, and how many parts were
// recorded as sent before it.
struct LongSmsFailure {
    std::optional<AtError> error;
    std::size_t recorded = 0;
};

LongSmsFailure send_failing_long_sms(Modem& modem) {
    LongSmsFailure failure;
    try {
        modem.send("+491701234567", std::string(200, 'a'), {},
                   [&](std::size_t, std::size_t, std::uint8_t) { ++failure.recorded; });
    } catch (const AtError& error) {
        failure.error = error;
    }
    return failure;
}

TEST(Modem_Send, CmsErrorStopsBeforeTheNextPart) {
    ScriptedModem fake(fake::sim_modem({.after_pdu = "\r\n+CMS ERROR: 1\r\n"}));
    Modem modem(config_for(fake));
    modem.open();

    const auto failure = send_failing_long_sms(modem);

    ASSERT_TRUE(failure.error) << "sent";
    EXPECT_EQ(failure.error->code(), cms_error(1));
    EXPECT_EQ(classify_send_error(failure.error->code()), SendFault::permanent);
    EXPECT_EQ(failure.recorded, 0u);
    EXPECT_EQ(count(fake.received(), "\x1a"), 1u);
}

// A +CMGS whose OK never comes: the part has gone and is recorded, and the
// modem starts over so that a late OK answers no other command.
TEST(Modem_Send, ReferenceWithoutOkCountsAsSentAndResetsTheModem) {
    ScriptedModem fake(fake::sim_modem({.after_pdu = "\r\n+CMGS: 21\r\n"}));
    Modem modem(config_for(fake));
    modem.open();
    std::vector<std::uint8_t> references;

    modem.send(
        "+491701234567", "Ihr Code: 123456", {},
        [&](std::size_t, std::size_t, std::uint8_t reference) { references.push_back(reference); });

    EXPECT_EQ(references, std::vector<std::uint8_t>{21});
    EXPECT_FALSE(modem.is_open());
    ASSERT_TRUE(modem.send_reset());
    EXPECT_EQ(*modem.send_reset(),
              "AT+CMGS: no final result after the reference (AT+CMGS: timeout: no final result "
              "before the deadline); the SMS counts as sent and the modem was reset");
}

TEST(Modem_Send, ASendWithItsOkLeavesNoResetToReport) {
    ScriptedModem fake(fake::sim_modem({}));
    Modem modem(config_for(fake));
    modem.open();

    modem.send("+491701234567", std::string(200, 'a'), {},
               [](std::size_t, std::size_t, std::uint8_t) {});

    EXPECT_TRUE(modem.is_open());
    EXPECT_FALSE(modem.send_reset()) << *modem.send_reset();
}

TEST(Modem_Send, ReferenceWithoutOkStopsBeforeTheNextPart) {
    ScriptedModem fake(fake::sim_modem({.after_pdu = "\r\n+CMGS: 22\r\n"}));
    Modem modem(config_for(fake));
    modem.open();

    const auto failure = send_failing_long_sms(modem);

    ASSERT_TRUE(failure.error) << "sent";
    EXPECT_EQ(failure.error->code(), AtErrc::timeout);
    // Health's last_error: what failed, said once.
    EXPECT_EQ(std::string(failure.error->what()), "AT+CMGS: no final result before the deadline");
    EXPECT_EQ(failure.recorded, 1u);
    EXPECT_EQ(count(fake.received(), "AT+CMGS="), 1u);
    EXPECT_FALSE(modem.is_open());
    ASSERT_TRUE(modem.send_reset());
    EXPECT_NE(modem.send_reset()->find("of part 1 of 2 (AT+CMGS: timeout"), std::string::npos)
        << *modem.send_reset();
    EXPECT_NE(modem.send_reset()->find("the other parts were not sent"), std::string::npos)
        << *modem.send_reset();
}

// A delivery report that comes while the modem is reset (it listens before
// it closes the port) is kept, not closed away with the port.
TEST(Modem_Send, ADeliveryReportDuringTheResetIsKept) {
    const auto report = encode_status_report({7, "+491701234567", 0, DeliveryClass::delivered});
    const auto script = [report, sim = fake::sim_modem({})](const std::string& line) {
        if (line == "\x1b\x1a") {  // the reset's ESC and Ctrl-Z
            return "\r\n+CDS: " + std::to_string(report.size() / 2 - 1) + "\r\n" + report + "\r\n";
        }
        if (line.ends_with('\x1a')) {
            return std::string("\r\n+CMGS: 21\r\n");  // and no OK
        }
        return sim(line);
    };
    ScriptedModem fake(script);
    Modem modem(config_for(fake));
    modem.open();

    modem.send("+491701234567", "Ihr Code: 123456", {},
               [](std::size_t, std::size_t, std::uint8_t) {});

    ASSERT_FALSE(modem.is_open());
    const auto reports = modem.take_status_reports();
    ASSERT_EQ(reports.size(), 1u);
    EXPECT_EQ(reports[0].message_reference, 7);
}

TEST(Modem_Listen, CollectsDeliveryReports) {
    ScriptedModem fake(fake::sim_modem({}));
    Modem modem(config_for(fake));
    modem.open();
    const auto pdu = encode_status_report({42, "+491701234567", 0, DeliveryClass::delivered});

    fake.write("\r\n+CDS: " + std::to_string(pdu.size() / 2 - 1) + "\r\n" + pdu + "\r\n");
    std::vector<StatusReport> reports;
    ASSERT_TRUE(test::wait_until(
        [&] {
            modem.listen(100ms);
            auto more = modem.take_status_reports();
            reports.insert(reports.end(), more.begin(), more.end());
            return !reports.empty();
        },
        3s));

    EXPECT_EQ(reports[0].message_reference, 42);
    EXPECT_EQ(reports[0].delivery, DeliveryClass::delivered);
}

TEST(Modem_Listen, FollowsRegistrationUrcs) {
    ScriptedModem fake(fake::sim_modem({}));
    Modem modem(config_for(fake));
    modem.open();
    fake.write("\r\n+CREG: 2\r\n");
    modem.listen(200ms);

    EXPECT_EQ(modem.registration(), Registration::searching);
}

TEST(Modem_ParseRegistration, ReadsBothForms) {
    EXPECT_EQ(parse_registration("+CREG: 0,1"), Registration::home);
    EXPECT_EQ(parse_registration("+CREG: 2,5,\"1A2B\",\"00C3\""), Registration::roaming);
    EXPECT_EQ(parse_registration("+CREG: 5"), Registration::roaming);
    EXPECT_EQ(parse_registration("+CEREG: 1,\"1A2B\",\"0000C3\",7"), Registration::home);
    EXPECT_EQ(parse_registration("+CREG: 0,3"), Registration::denied);
    EXPECT_EQ(parse_registration("+CSQ: 3,1"), std::nullopt);
    EXPECT_EQ(parse_registration("+CREG: x"), std::nullopt);
}

TEST(Modem_ClassifySendError, SeparatesMessageNetworkAndModemFaults) {
    EXPECT_EQ(classify_send_error(cms_error(1)), SendFault::permanent);     // unassigned number
    EXPECT_EQ(classify_send_error(cms_error(0xc4)), SendFault::permanent);  // SME barred
    EXPECT_EQ(classify_send_error(cms_error(38)), SendFault::temporary);    // network out of order
    EXPECT_EQ(classify_send_error(cms_error(42)), SendFault::temporary);    // congestion
    EXPECT_EQ(classify_send_error(cms_error(310)), SendFault::modem);       // SIM not inserted
    EXPECT_EQ(classify_send_error(cms_error(331)), SendFault::modem);       // no network service
    EXPECT_EQ(classify_send_error(make_error_code(AtErrc::timeout)), SendFault::modem);
    EXPECT_EQ(classify_send_error(make_error_code(AtErrc::no_prompt)), SendFault::modem);
    EXPECT_EQ(classify_send_error(cme_error(10)), SendFault::modem);
}

}  // namespace
}  // namespace otpbox::gsm
