// The AT engine against a scripted modem on a real pseudo-terminal pair.

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "otpbox/gsm/at_engine.hpp"
#include "otpbox/gsm/at_error.hpp"
#include "scripted_modem.hpp"
#include "test_support.hpp"

namespace otpbox::gsm {
namespace {

using namespace std::chrono_literals;
using fake::ScriptedModem;

constexpr std::string_view kPdu = "0011000B919471021436F50000A7034F6B19";
constexpr std::string_view kReportPdu = "0006070B919471021436F5621240001235406212400012354000";

std::string ok(std::string_view lines = {}) {
    return std::string(lines) + "\r\nOK\r\n";
}

TEST(AtEngine_Command, ReturnsInformationLinesBeforeOk) {
    ScriptedModem modem([](const std::string& line) {
        return line == "AT+CSQ" ? ok("\r\n+CSQ: 21,99\r\n") : ok();
    });
    AtEngine engine(modem.settings());

    const auto response = engine.command("AT+CSQ", 2s);

    ASSERT_EQ(response.lines.size(), 1u);
    EXPECT_EQ(response.lines[0], "+CSQ: 21,99");
}

TEST(AtEngine_Command, MapsCmeErrorToItsCategory) {
    ScriptedModem modem([](const std::string&) { return "\r\n+CME ERROR: 10\r\n"; });
    AtEngine engine(modem.settings());

    try {
        (void)engine.command("AT+CPIN?", 2s);
        FAIL() << "no error";
    } catch (const AtError& error) {
        EXPECT_EQ(error.code(), cme_error(10));
        EXPECT_EQ(&error.code().category(), &cme_category());
        EXPECT_NE(error.code().message().find("SIM not inserted"), std::string::npos);
        // The command, then the error's meaning, once.
        const std::string what = error.what();
        EXPECT_EQ(what.rfind("AT+CPIN?", 0), 0u) << what;
        EXPECT_EQ(what.find("SIM not inserted"), what.rfind("SIM not inserted")) << what;
    }
}

TEST(AtEngine_Command, MapsPlainErrorToAtCategory) {
    ScriptedModem modem([](const std::string&) { return "\r\nERROR\r\n"; });
    AtEngine engine(modem.settings());

    try {
        (void)engine.command("AT+CEREG?", 2s);
        FAIL() << "no error";
    } catch (const AtError& error) {
        EXPECT_EQ(error.code(), AtErrc::error);
    }
}

TEST(AtEngine_Command, TimesOutAndKeepsUrcsThatArrivedMeanwhile) {
    ScriptedModem modem([](const std::string&) { return "\r\nRING\r\n\r\n^RSSI: 12\r\n"; });
    AtEngine engine(modem.settings());

    try {
        (void)engine.command("AT", 300ms);
        FAIL() << "no timeout";
    } catch (const AtError& error) {
        EXPECT_EQ(error.code(), AtErrc::timeout);
    }
    const auto urcs = engine.take_urcs();
    ASSERT_EQ(urcs.size(), 2u);
    EXPECT_EQ(urcs[0].line, "RING");
    EXPECT_EQ(urcs[1].line, "^RSSI: 12");
}

TEST(AtEngine_Command, ToleratesEcho) {
    ScriptedModem modem([](const std::string& line) {
        return line + "\r" + (line == "AT+CREG?" ? ok("\r\n+CREG: 0,1\r\n") : ok());
    });
    AtEngine engine(modem.settings());

    const auto response = engine.command("AT+CREG?", 2s);

    ASSERT_EQ(response.lines.size(), 1u);
    EXPECT_EQ(response.lines[0], "+CREG: 0,1");
    EXPECT_TRUE(engine.take_urcs().empty());
}

TEST(AtEngine_Command, SurvivesBinaryGarbageAndOverlongRuns) {
    ScriptedModem modem([](const std::string&) {
        std::string noise("\x00\xff\xfe\x07garbage\x01", 13);
        noise += std::string(5000, 'x');  // no line end: dropped past the bound
        return noise + "\r\n" + ok();
    });
    AtEngine engine(modem.settings());

    EXPECT_NO_THROW((void)engine.command("AT", 2s));
    for (const auto& urc : engine.take_urcs()) {
        EXPECT_LE(urc.line.size(), AtEngine::kMaxLine);
    }
    EXPECT_NO_THROW((void)engine.command("AT", 2s));
}

// Without dropping the whole line, the tail after the bound would be a line
// of its own, here an OK that hides the ERROR the command got.
TEST(AtEngine_Command, DropsAnOverlongLineUpToItsEnd) {
    ScriptedModem modem([](const std::string&) {
        return "\r\n" + std::string(AtEngine::kMaxLine + 1, 'x') + "OK\r\n\r\nERROR\r\n";
    });
    AtEngine engine(modem.settings());

    try {
        (void)engine.command("AT", 2s);
        FAIL() << "the tail of an overlong line was taken for OK";
    } catch (const AtError& error) {
        EXPECT_EQ(error.code(), AtErrc::error);
    }
    EXPECT_TRUE(engine.take_urcs().empty());
}

TEST(AtEngine_Command, OpeningAMissingDeviceFails) {
    try {
        AtEngine engine(SerialSettings{"/nonexistent/ttyUSB9", 115200, false});
        FAIL() << "opened";
    } catch (const AtError& error) {
        EXPECT_EQ(error.code(), AtErrc::port_closed);
        // A port that never opened was not "closed".
        EXPECT_EQ(std::string(error.what()),
                  "open /nonexistent/ttyUSB9: No such file or directory: serial port unusable");
    }
}

// Two daemons configured with one modem would interleave their commands.
TEST(AtEngine_Command, APortOpenElsewhereIsRefusedUntilItIsClosed) {
    ScriptedModem modem([](const std::string&) { return ok(); });
    auto first = std::make_unique<AtEngine>(modem.settings());
    try {
        AtEngine second(modem.settings());
        FAIL() << "opened twice";
    } catch (const AtError& error) {
        EXPECT_EQ(error.code(), AtErrc::port_closed);
        EXPECT_NE(std::string(error.what()).find("in use by another program"), std::string::npos)
            << error.what();
    }
    first.reset();
    AtEngine again(modem.settings());
    EXPECT_TRUE(again.command("AT", 2s).lines.empty());
}

TEST(AtEngine_Command, HangupReportsPortClosed) {
    ScriptedModem modem([](const std::string&) { return std::string(); });
    AtEngine engine(modem.settings());
    modem.close_master();

    try {
        (void)engine.command("AT", 2s);
        FAIL() << "no error";
    } catch (const AtError& error) {
        EXPECT_EQ(error.code(), AtErrc::port_closed);
    }
}

// A modem in PDU mode: prompt after AT+CMGS, then what `after_pdu` says.
ScriptedModem::Script pdu_modem(std::string prompt, std::string after_pdu) {
    return [prompt, after_pdu](const std::string& line) {
        if (line.starts_with("AT+CMGS=")) {
            return prompt;
        }
        if (line.ends_with("\x1a")) {
            return after_pdu;
        }
        return ok();
    };
}

TEST(AtEngine_SendPdu, ReturnsTheMessageReference) {
    ScriptedModem modem(pdu_modem("\r\n> ", "\r\n+CMGS: 42\r\n" + ok()));
    AtEngine engine(modem.settings());

    EXPECT_EQ(engine.send_pdu(17, kPdu, 2s, 2s), 42);
    EXPECT_NE(modem.received().find("AT+CMGS=17\r" + std::string(kPdu) + "\x1a"),
              std::string::npos);
}

// A reference missed here would make the worker send the SMS again.
TEST(AtEngine_SendPdu, ReadsTheReferenceBeforeAnAckPdu) {
    ScriptedModem modem(pdu_modem("\r\n> ", "\r\n+CMGS: 7,\"0101000000\"\r\n" + ok()));
    AtEngine engine(modem.settings());

    EXPECT_EQ(engine.send_pdu(17, kPdu, 2s, 2s), 7);
}

TEST(AtEngine_SendPdu, TakesOutUrcsBetweenPromptAndResult) {
    const std::string urcs = "\r\n+CMTI: \"SM\",3\r\n\r\n+CDS: 25\r\n" + std::string(kReportPdu) +
                             "\r\n\r\n+CREG: 5\r\n";
    ScriptedModem modem(pdu_modem("\r\n+CREG: 1\r\n\r\n> ", urcs + "\r\n+CMGS: 7\r\n" + ok()));
    AtEngine engine(modem.settings());

    EXPECT_EQ(engine.send_pdu(17, kPdu, 2s, 2s), 7);

    const auto taken = engine.take_urcs();
    ASSERT_EQ(taken.size(), 4u);
    EXPECT_EQ(taken[0].line, "+CREG: 1");
    EXPECT_EQ(taken[1].line, "+CMTI: \"SM\",3");
    EXPECT_EQ(taken[2].line, "+CDS: 25");
    ASSERT_TRUE(taken[2].pdu.has_value());
    EXPECT_EQ(*taken[2].pdu, kReportPdu);
    EXPECT_EQ(taken[3].line, "+CREG: 5");
}

TEST(AtEngine_SendPdu, AcceptsBarePromptWithEcho) {
    ScriptedModem modem([](const std::string& line) -> std::string {
        if (line.starts_with("AT+CMGS=")) {
            return line + "\r\r\n>";
        }
        if (line.ends_with("\x1a")) {
            return line + "\r\n+CMGS: 3\r\n" + ok();
        }
        return ok();
    });
    AtEngine engine(modem.settings());

    EXPECT_EQ(engine.send_pdu(17, kPdu, 2s, 2s), 3);
}

TEST(AtEngine_SendPdu, MissingPromptCancelsWithEscape) {
    ScriptedModem modem(pdu_modem("", ""));
    AtEngine engine(modem.settings());

    try {
        (void)engine.send_pdu(17, kPdu, 300ms, 2s);
        FAIL() << "no error";
    } catch (const AtError& error) {
        EXPECT_EQ(error.code(), AtErrc::no_prompt);
        // Health's last_error: what failed, said once.
        EXPECT_EQ(std::string(error.what()), "send: no prompt after AT+CMGS");
    }
    EXPECT_TRUE(
        test::wait_until([&] { return modem.received().find('\x1b') != std::string::npos; }, 2s));
    EXPECT_EQ(modem.received().find(kPdu), std::string::npos);
}

TEST(AtEngine_SendPdu, MapsCmsErrorAfterThePdu) {
    ScriptedModem modem(pdu_modem("\r\n> ", "\r\n+CMS ERROR: 38\r\n"));
    AtEngine engine(modem.settings());

    try {
        (void)engine.send_pdu(17, kPdu, 2s, 2s);
        FAIL() << "no error";
    } catch (const AtError& error) {
        EXPECT_EQ(error.code(), cms_error(38));
        EXPECT_NE(error.code().message().find("network out of order"), std::string::npos);
        EXPECT_EQ(std::string(error.what()).find(kPdu), std::string::npos);
    }
}

TEST(AtEngine_SendPdu, OkWithoutReferenceIsABadResponse) {
    ScriptedModem modem(pdu_modem("\r\n> ", ok()));
    AtEngine engine(modem.settings());

    try {
        (void)engine.send_pdu(17, kPdu, 2s, 2s);
        FAIL() << "no error";
    } catch (const AtError& error) {
        EXPECT_EQ(error.code(), AtErrc::bad_response);
    }
}

// "+CMGS: <mr>" says the service centre took the SMS: an OK that never
// follows must not make the worker send it a second time.
TEST(AtEngine_SendPdu, KeepsTheReferenceWhenNoOkFollows) {
    ScriptedModem modem(pdu_modem("\r\n> ", "\r\n+CMGS: 9\r\n"));
    AtEngine engine(modem.settings());

    EXPECT_EQ(engine.send_pdu(17, kPdu, 2s, 300ms), 9);
    // What came instead of the OK, for health and the log; never the PDU.
    ASSERT_TRUE(engine.final_result_missing());
    EXPECT_EQ(*engine.final_result_missing(),
              "AT+CMGS: timeout: no final result before the deadline");
}

TEST(AtEngine_SendPdu, AnOkAfterTheReferenceLeavesNoFinalResultMissing) {
    ScriptedModem modem(pdu_modem("\r\n> ", "\r\n+CMGS: 9\r\n" + ok()));
    AtEngine engine(modem.settings());

    EXPECT_EQ(engine.send_pdu(17, kPdu, 2s, 2s), 9);
    EXPECT_FALSE(engine.final_result_missing()) << *engine.final_result_missing();
}

TEST(AtEngine_SendPdu, KeepsTheReferenceWhenTheLineDropsBeforeOk) {
    ScriptedModem modem(pdu_modem("\r\n> ", "\r\n+CMGS: 11\r\n"));
    AtEngine engine(modem.settings());
    std::jthread hangup([&] {
        (void)test::wait_until([&] { return modem.received().find('\x1a') != std::string::npos; },
                               2s);
        std::this_thread::sleep_for(200ms);
        modem.close_master();
    });

    EXPECT_EQ(engine.send_pdu(17, kPdu, 2s, 5s), 11);
    ASSERT_TRUE(engine.final_result_missing());
    EXPECT_NE(engine.final_result_missing()->find("serial port unusable"), std::string::npos)
        << *engine.final_result_missing();
}

TEST(AtEngine_SendPdu, ATimeoutWithoutAReferenceStaysATimeout) {
    ScriptedModem modem(pdu_modem("\r\n> ", ""));
    AtEngine engine(modem.settings());

    try {
        (void)engine.send_pdu(17, kPdu, 2s, 300ms);
        FAIL() << "no error";
    } catch (const AtError& error) {
        EXPECT_EQ(error.code(), AtErrc::timeout);
    }
}

TEST(AtEngine_Listen, CollectsUnsolicitedReports) {
    ScriptedModem modem([](const std::string&) { return ok(); });
    AtEngine engine(modem.settings());
    modem.write("\r\n+CDS: 25\r\n" + std::string(kReportPdu) + "\r\n\r\n+CEREG: 1\r\n");

    engine.listen(300ms);

    const auto urcs = engine.take_urcs();
    ASSERT_EQ(urcs.size(), 2u);
    EXPECT_EQ(urcs[0].pdu.value_or(""), kReportPdu);
    EXPECT_EQ(urcs[1].line, "+CEREG: 1");
}

// A listen that ends between the +CDS line and its PDU keeps the report
// until the PDU arrives, instead of losing it (or writing past an empty list).
TEST(AtEngine_Listen, KeepsAReportWhosePduComesAfterTheListen) {
    ScriptedModem modem([](const std::string&) { return ok(); });
    AtEngine engine(modem.settings());
    modem.write("\r\n+CEREG: 1\r\n\r\n+CDS: 25\r\n");
    engine.listen(200ms);

    auto urcs = engine.take_urcs();
    ASSERT_EQ(urcs.size(), 1u);
    EXPECT_EQ(urcs[0].line, "+CEREG: 1");

    modem.write(std::string(kReportPdu) + "\r\n");
    engine.listen(200ms);

    urcs = engine.take_urcs();
    ASSERT_EQ(urcs.size(), 1u);
    EXPECT_EQ(urcs[0].line, "+CDS: 25");
    EXPECT_EQ(urcs[0].pdu.value_or(""), kReportPdu);
}

// A report whose PDU line never came must not take the next line of hex
// digits for it: here an IMSI, which the engine (taking only lines with the
// command's prefix as its answer) keeps as a line of its own.
TEST(AtEngine_Listen, AReportWithoutItsPduDoesNotTakeTheNextDigitsForIt) {
    ScriptedModem modem([](const std::string& command) {
        return command == "AT+CIMI" ? ok("\r\n262011234567890\r\n") : ok();
    });
    AtEngine engine(modem.settings());
    modem.write("\r\n+CDS: 25\r\n");
    engine.listen(200ms);

    (void)engine.command("AT+CIMI", 2s);
    const auto urcs = engine.take_urcs();
    ASSERT_EQ(urcs.size(), 2u);
    EXPECT_EQ(urcs[0].line, "+CDS: 25");
    EXPECT_FALSE(urcs[0].pdu.has_value()) << *urcs[0].pdu;
    EXPECT_EQ(urcs[1].line, "262011234567890");
}

}  // namespace
}  // namespace otpbox::gsm
