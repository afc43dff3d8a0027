// otpbox-modemsim driven as a host drives a modem: through its pty link,
// in raw mode, with PDUs from the codec, checking answers and the outbox.

#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "otpbox/gsm/pdu.hpp"
#include "test_support.hpp"

namespace otpbox::gsm {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using test::ChildProcess;
using test::TempDir;

constexpr char kCtrlZ = 0x1A;
constexpr char kEscape = 0x1B;
constexpr auto kAnswerTimeout = 5s;

// The host's end of the serial line, raw like a modem driver sets it.
class SerialLine {
  public:
    explicit SerialLine(const fs::path& device) {
        m_fd = ::open(device.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        if (m_fd < 0) {
            throw std::runtime_error("cannot open " + device.string());
        }
        termios settings{};
        ::tcgetattr(m_fd, &settings);
        ::cfmakeraw(&settings);
        ::tcsetattr(m_fd, TCSANOW, &settings);
    }
    ~SerialLine() { ::close(m_fd); }
    SerialLine(const SerialLine&) = delete;
    SerialLine& operator=(const SerialLine&) = delete;

    void send(std::string_view data) {
        while (!data.empty()) {
            const ssize_t written = ::write(m_fd, data.data(), data.size());
            if (written < 0 && errno != EAGAIN && errno != EINTR) {
                throw std::runtime_error("write to the simulator failed");
            }
            if (written > 0) {
                data.remove_prefix(static_cast<std::size_t>(written));
            } else {
                pollfd fd{m_fd, POLLOUT, 0};
                ::poll(&fd, 1, 100);
            }
        }
    }

    // What arrived until needle did (included), or all of it at the timeout.
    std::string read_until(std::string_view needle,
                           std::chrono::milliseconds timeout = kAnswerTimeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (m_buffer.find(needle) == std::string::npos) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0 || !read_some(left)) {
                break;
            }
        }
        const auto at = m_buffer.find(needle);
        const auto end = at == std::string::npos ? m_buffer.size() : at + needle.size();
        std::string taken = m_buffer.substr(0, end);
        m_buffer.erase(0, end);
        return taken;
    }

    // Sends a command line and returns everything up to its final result.
    std::string command(std::string_view line) {
        send(std::string(line) + "\r");
        std::string answer;
        for (;;) {
            answer += read_until("\r\n");
            if (answer.ends_with("\r\nOK\r\n") || answer.ends_with("ERROR\r\n") ||
                answer.find("ERROR: ") != std::string::npos || !answer.ends_with("\r\n")) {
                return answer;
            }
        }
    }

  private:
    bool read_some(std::chrono::milliseconds timeout) {
        pollfd fd{m_fd, POLLIN, 0};
        if (::poll(&fd, 1, static_cast<int>(timeout.count())) <= 0) {
            return false;
        }
        char chunk[4096];
        const ssize_t count = ::read(m_fd, chunk, sizeof chunk);
        if (count <= 0) {
            return false;
        }
        m_buffer.append(chunk, static_cast<std::size_t>(count));
        return true;
    }

    int m_fd = -1;
    std::string m_buffer;
};

class Modemsim : public ::testing::Test {
  protected:
    void start(std::vector<std::string> faults = {}) {
        const auto program = test::program_path("otpbox-modemsim");
        ASSERT_TRUE(fs::exists(program)) << "build otpbox-modemsim first";
        std::vector<std::string> argv = {
            program.string(), "--link", link().string(), "--outbox", outbox().string(),
            "--seed",         "7"};
        argv.insert(argv.end(), faults.begin(), faults.end());
        m_child.emplace(argv, std::vector<std::string>{}, m_dir.path() / "modemsim.log");
        ASSERT_TRUE(test::wait_until([&] { return fs::exists(link()); }, kAnswerTimeout));
        m_line.emplace(link());
        ASSERT_NE(m_line->command("ATE0").find("OK"), std::string::npos);
    }

    [[nodiscard]] fs::path link() const { return m_dir.path() / "modem0"; }
    [[nodiscard]] fs::path outbox() const { return m_dir.path() / "outbox.jsonl"; }

    [[nodiscard]] std::vector<boost::json::object> outbox_lines() const {
        std::vector<boost::json::object> lines;
        std::ifstream in(outbox());
        for (std::string line; std::getline(in, line);) {
            lines.push_back(boost::json::parse(line).as_object());
        }
        return lines;
    }

    // AT+CMGS for one part up to the prompt; the answer to the PDU after it.
    std::string send_part(const SubmitPart& part) {
        m_line->send("AT+CMGS=" + std::to_string(part.tpdu_length) + "\r");
        const auto prompt = m_line->read_until("> ");
        EXPECT_TRUE(prompt.ends_with("> ")) << prompt;
        m_line->send(part.hex + kCtrlZ);
        auto answer = m_line->read_until("\r\nOK\r\n");
        if (answer.find("OK") == std::string::npos) {
            answer += m_line->read_until("\r\n", 100ms);
        }
        return answer;
    }

    TempDir m_dir;
    std::optional<ChildProcess> m_child;
    std::optional<SerialLine> m_line;
};

TEST_F(Modemsim, AnswersLikeAModem) {
    ASSERT_NO_FATAL_FAILURE(start());
    auto& line = *m_line;
    EXPECT_EQ(line.command("AT"), "\r\nOK\r\n");
    EXPECT_EQ(line.command("AT+CPIN?"), "\r\n+CPIN: READY\r\n\r\nOK\r\n");
    EXPECT_EQ(line.command("AT+CREG?"), "\r\n+CREG: 0,1\r\n\r\nOK\r\n");
    EXPECT_EQ(line.command("AT+CSQ"), "\r\n+CSQ: 20,99\r\n\r\nOK\r\n");
    EXPECT_EQ(line.command("AT+CMGF=0"), "\r\nOK\r\n");
    EXPECT_EQ(line.command("AT+CMGF=?"), "\r\n+CMGF: (0)\r\n\r\nOK\r\n");
    EXPECT_NE(line.command("AT+CSCA?").find("+CSCA: \"+"), std::string::npos);
    EXPECT_NE(line.command("AT+CSCS=?").find("\"UCS2\""), std::string::npos);
    EXPECT_NE(line.command("AT+CGSN").find("\r\nOK\r\n"), std::string::npos);
    EXPECT_EQ(line.command("AT+BOGUS"), "\r\nERROR\r\n");
    EXPECT_EQ(line.command("AT+CMEE=1"), "\r\nOK\r\n");
    EXPECT_EQ(line.command("AT+BOGUS"), "\r\n+CME ERROR: 4\r\n");
    EXPECT_EQ(line.command("AT+CREG=2;+CREG?"),
              "\r\n+CREG: 2,1,\"1A2B\",\"00C3D4E5\"\r\n\r\nOK\r\n");
}

TEST_F(Modemsim, EchoesUntilAte0) {
    ASSERT_NO_FATAL_FAILURE(start());
    EXPECT_EQ(m_line->command("ATE1"), "\r\nOK\r\n");
    EXPECT_EQ(m_line->command("AT"), "AT\r\r\nOK\r\n");
    EXPECT_EQ(m_line->command("ATE0"), "ATE0\r\r\nOK\r\n");
    EXPECT_EQ(m_line->command("AT"), "\r\nOK\r\n");
}

TEST_F(Modemsim, WritesTheMessageToTheOutbox) {
    ASSERT_NO_FATAL_FAILURE(start());
    const std::string text = "Grüße: 5 € für Jürgen, Straße Ä Ö Ü";
    const auto parts = encode_submit("+491701234567", text);
    ASSERT_EQ(parts.size(), 1u);
    const auto answer = send_part(parts[0]);
    EXPECT_NE(answer.find("\r\n+CMGS: "), std::string::npos) << answer;
    EXPECT_TRUE(answer.ends_with("\r\nOK\r\n"));

    const auto lines = outbox_lines();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].at("to").as_string(), "+491701234567");
    EXPECT_EQ(lines[0].at("text").as_string(), text);
    EXPECT_EQ(lines[0].at("parts").as_int64(), 1);
    EXPECT_EQ(lines[0].at("pdu").as_array().at(0).as_string(), parts[0].hex);
    const std::string at(lines[0].at("at").as_string());
    EXPECT_EQ(at.size(), 20u);
    EXPECT_TRUE(at.ends_with("Z"));
}

TEST_F(Modemsim, JoinsTwoPartsIntoOneOutboxLine) {
    ASSERT_NO_FATAL_FAILURE(start());
    SubmitOptions options;
    options.concat_reference = 9;
    const std::string text(200, 'x');
    const auto parts = encode_submit("+491701234567", text, options);
    ASSERT_EQ(parts.size(), 2u);

    EXPECT_NE(send_part(parts[0]).find("+CMGS: "), std::string::npos);
    EXPECT_TRUE(outbox_lines().empty());
    EXPECT_NE(send_part(parts[1]).find("+CMGS: "), std::string::npos);

    const auto lines = outbox_lines();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].at("text").as_string(), text);
    EXPECT_EQ(lines[0].at("parts").as_int64(), 2);
    EXPECT_EQ(lines[0].at("pdu").as_array().at(1).as_string(), parts[1].hex);
}

TEST_F(Modemsim, MessageReferencesCountUp) {
    ASSERT_NO_FATAL_FAILURE(start());
    const auto part = encode_submit("+491701234567", "eins")[0];
    const auto first = send_part(part);
    const auto second = send_part(part);
    EXPECT_NE(first.find("+CMGS: 0\r\n"), std::string::npos) << first;
    EXPECT_NE(second.find("+CMGS: 1\r\n"), std::string::npos) << second;
    EXPECT_EQ(outbox_lines().size(), 2u);
}

TEST_F(Modemsim, OutboxRemovedMeanwhileIsCreatedAgain) {
    ASSERT_NO_FATAL_FAILURE(start());
    const auto part = encode_submit("+491701234567", "neu")[0];
    ASSERT_NE(send_part(part).find("+CMGS: "), std::string::npos);
    fs::remove(outbox());
    ASSERT_NE(send_part(part).find("+CMGS: "), std::string::npos);
    EXPECT_EQ(outbox_lines().size(), 1u);
}

TEST_F(Modemsim, SendsAStatusReportWhenAsked) {
    ASSERT_NO_FATAL_FAILURE(start({"--report-delay-ms", "100"}));
    const auto part = encode_submit("+491701234567", "Bericht bitte")[0];
    const auto answer = send_part(part);
    ASSERT_NE(answer.find("+CMGS: 0"), std::string::npos);

    auto cds = m_line->read_until("+CDS: ");
    ASSERT_TRUE(cds.ends_with("+CDS: ")) << cds;
    const auto length_line = m_line->read_until("\r\n");
    const auto pdu_line = m_line->read_until("\r\n");
    ASSERT_TRUE(pdu_line.ends_with("\r\n"));
    const std::string hex = pdu_line.substr(0, pdu_line.size() - 2);
    EXPECT_EQ(std::stoul(length_line), hex.size() / 2 - 1);
    const auto report = decode_status_report(hex);
    EXPECT_EQ(report.message_reference, 0);
    EXPECT_EQ(report.recipient, "+491701234567");
    EXPECT_EQ(report.delivery, DeliveryClass::delivered);
}

TEST_F(Modemsim, ReportStatusOptionSetsTheStatus) {
    ASSERT_NO_FATAL_FAILURE(start({"--report-delay-ms", "50", "--report-status", "65"}));
    ASSERT_NE(send_part(encode_submit("+491701234567", "weg")[0]).find("+CMGS"), std::string::npos);
    ASSERT_TRUE(m_line->read_until("+CDS: ").ends_with("+CDS: "));
    (void)m_line->read_until("\r\n");
    const auto pdu_line = m_line->read_until("\r\n");
    const auto report = decode_status_report(pdu_line.substr(0, pdu_line.size() - 2));
    EXPECT_EQ(report.status, 0x41);
    EXPECT_EQ(report.delivery, DeliveryClass::permanent);
}

TEST_F(Modemsim, NoReportWhenNotRequested) {
    ASSERT_NO_FATAL_FAILURE(start({"--report-delay-ms", "50"}));
    SubmitOptions options;
    options.status_report = false;
    ASSERT_NE(send_part(encode_submit("+491701234567", "still", options)[0]).find("+CMGS"),
              std::string::npos);
    EXPECT_EQ(m_line->read_until("+CDS", 500ms).find("+CDS"), std::string::npos);
}

TEST_F(Modemsim, EscapeCancelsTheMessage) {
    ASSERT_NO_FATAL_FAILURE(start());
    m_line->send("AT+CMGS=20\r");
    ASSERT_TRUE(m_line->read_until("> ").ends_with("> "));
    m_line->send(std::string("0011") + kEscape);
    EXPECT_EQ(m_line->read_until("\r\nOK\r\n"), "\r\nOK\r\n");
    EXPECT_TRUE(outbox_lines().empty());
}

TEST_F(Modemsim, RefusesMalformedOrMislabelledPdus) {
    ASSERT_NO_FATAL_FAILURE(start());
    m_line->send("AT+CMGS=5\r");
    ASSERT_TRUE(m_line->read_until("> ").ends_with("> "));
    m_line->send(std::string("00ZZ11") + kCtrlZ);
    EXPECT_EQ(m_line->read_until("\r\n+CMS ERROR: 304\r\n"), "\r\n+CMS ERROR: 304\r\n");

    auto part = encode_submit("+491701234567", "Länge")[0];
    part.tpdu_length += 1;
    EXPECT_NE(send_part(part).find("+CMS ERROR: 304"), std::string::npos);
    EXPECT_EQ(m_line->command("AT+CMGS=0"), "\r\n+CMS ERROR: 304\r\n");
    EXPECT_TRUE(outbox_lines().empty());
}

TEST_F(Modemsim, NoPromptFaultNeverPrompts) {
    ASSERT_NO_FATAL_FAILURE(start({"--no-prompt"}));
    m_line->send("AT+CMGS=20\r");
    EXPECT_EQ(m_line->read_until(">", 500ms), "");
    m_line->send(std::string(1, kEscape));
    EXPECT_EQ(m_line->read_until("\r\nOK\r\n"), "\r\nOK\r\n");
}

TEST_F(Modemsim, BarePromptFaultDropsTheSpace) {
    ASSERT_NO_FATAL_FAILURE(start({"--bare-prompt"}));
    m_line->send("AT+CMGS=20\r");
    EXPECT_EQ(m_line->read_until(">"), "\r\n>");
    EXPECT_EQ(m_line->read_until(" ", 300ms), "");
    m_line->send(std::string(1, kEscape));
    EXPECT_EQ(m_line->read_until("\r\nOK\r\n"), "\r\nOK\r\n");
}

TEST_F(Modemsim, ErrorRateFaultAnswersTheCode) {
    ASSERT_NO_FATAL_FAILURE(start({"--error-rate", "38=1.0"}));
    const auto answer = send_part(encode_submit("+491701234567", "nie")[0]);
    EXPECT_NE(answer.find("\r\n+CMS ERROR: 38\r\n"), std::string::npos) << answer;
    EXPECT_TRUE(outbox_lines().empty());
}

// The message goes out and gets its reference; only the OK never comes.
TEST_F(Modemsim, LostOkFaultAnswersTheReferenceAlone) {
    ASSERT_NO_FATAL_FAILURE(start({"--lost-ok-rate", "1", "--no-status-reports"}));
    const auto part = encode_submit("+491701234567", "ohne OK")[0];
    m_line->send("AT+CMGS=" + std::to_string(part.tpdu_length) + "\r");
    ASSERT_TRUE(m_line->read_until("> ").ends_with("> "));
    m_line->send(part.hex + kCtrlZ);
    EXPECT_EQ(m_line->read_until("\r\nOK\r\n", 1s), "\r\n+CMGS: 0\r\n");
    EXPECT_EQ(outbox_lines().size(), 1u);
    EXPECT_EQ(m_line->command("AT"), "\r\nOK\r\n");
}

TEST_F(Modemsim, UrcArrivesBetweenPromptAndAnswer) {
    ASSERT_NO_FATAL_FAILURE(start({"--urc-during-send"}));
    const auto answer = send_part(encode_submit("+491701234567", "urc")[0]);
    const auto urc = answer.find("^RSSI: 15");
    ASSERT_NE(urc, std::string::npos) << answer;
    EXPECT_LT(urc, answer.find("+CMGS: "));
}

TEST_F(Modemsim, LatencyDelaysOnlyTheAnswer) {
    ASSERT_NO_FATAL_FAILURE(start({"--latency-ms", "300"}));
    const auto part = encode_submit("+491701234567", "langsam")[0];
    m_line->send("AT+CMGS=" + std::to_string(part.tpdu_length) + "\r");
    ASSERT_TRUE(m_line->read_until("> ").ends_with("> "));
    m_line->send(part.hex + kCtrlZ + "AT\r");
    const auto answer = m_line->read_until("\r\nOK\r\n\r\nOK\r\n");
    // The AT after the PDU waits for the +CMGS answer, as on a busy modem.
    EXPECT_NE(answer.find("+CMGS: 0\r\n\r\nOK\r\n\r\nOK\r\n"), std::string::npos) << answer;
}

TEST_F(Modemsim, CmgsArrivalsTimeTheFirstByteOfEachAcceptedCmgs) {
    using Clock = std::chrono::steady_clock;
    const auto arrivals = m_dir.path() / "cmgs-arrivals";
    ASSERT_NO_FATAL_FAILURE(start({"--cmgs-arrivals", arrivals.string()}));
    const auto part = encode_submit("+491701234567", "wann")[0];
    const auto command = "AT+CMGS=" + std::to_string(part.tpdu_length) + "\r";

    // The command comes in two pieces; its time is the first one's.
    const auto before = Clock::now();
    m_line->send(command.substr(0, 5));
    std::this_thread::sleep_for(200ms);
    const auto second_piece = Clock::now();
    m_line->send(command.substr(5));
    ASSERT_TRUE(m_line->read_until("> ").ends_with("> "));
    m_line->send(part.hex + kCtrlZ);
    ASSERT_NE(m_line->read_until("\r\nOK\r\n").find("+CMGS: "), std::string::npos);
    // Neither a refused AT+CMGS nor another command is recorded.
    EXPECT_NE(m_line->command("AT+CMGS=0").find("ERROR"), std::string::npos);
    EXPECT_EQ(m_line->command("AT"), "\r\nOK\r\n");

    std::ifstream in(arrivals);
    std::vector<Clock::time_point> recorded;
    for (long long nanoseconds = 0; in >> nanoseconds;) {
        recorded.emplace_back(std::chrono::nanoseconds(nanoseconds));
    }
    ASSERT_EQ(recorded.size(), 1u);
    EXPECT_GE(recorded[0], before);
    EXPECT_LT(recorded[0], second_piece);
}

TEST_F(Modemsim, NoRegistrationFault) {
    ASSERT_NO_FATAL_FAILURE(start({"--no-registration"}));
    EXPECT_EQ(m_line->command("AT+CREG?"), "\r\n+CREG: 0,2\r\n\r\nOK\r\n");
    EXPECT_EQ(m_line->command("AT+CMGS=20"), "\r\n+CMS ERROR: 331\r\n");
}

TEST_F(Modemsim, SimPinGuardsTheSim) {
    ASSERT_NO_FATAL_FAILURE(start({"--sim-pin", "4711", "--sim-busy-ms", "60000"}));
    auto& line = *m_line;
    EXPECT_EQ(line.command("AT+CMEE=1"), "\r\nOK\r\n");
    EXPECT_EQ(line.command("AT+CPIN?"), "\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n");
    EXPECT_EQ(line.command("AT+CMGS=20"), "\r\n+CME ERROR: 11\r\n");
    EXPECT_EQ(line.command("AT+CPIN=\"0000\""), "\r\n+CME ERROR: 16\r\n");
    EXPECT_EQ(line.command("AT+CPIN=\"4711\""), "\r\nOK\r\n");
    EXPECT_EQ(line.command("AT+CPIN?"), "\r\n+CPIN: READY\r\n\r\nOK\r\n");
    EXPECT_EQ(line.command("AT+CIMI"), "\r\n+CME ERROR: 14\r\n");
}

TEST_F(Modemsim, NoiseFaultSendsUnsolicitedLines) {
    ASSERT_NO_FATAL_FAILURE(start({"--noise-ms", "50"}));
    const auto noise = m_line->read_until("never", 600ms);
    EXPECT_TRUE(noise.find("RING") != std::string::npos ||
                noise.find("^RSSI: ") != std::string::npos ||
                noise.find("+CREG: ") != std::string::npos)
        << noise;
}

TEST_F(Modemsim, GarbageInsideAPduIsRefused) {
    ASSERT_NO_FATAL_FAILURE(start());
    m_line->send("AT+CMGS=20\r");
    ASSERT_TRUE(m_line->read_until("> ").ends_with("> "));
    m_line->send(std::string("\x01\xFF\x80 hello") + std::string(3000, 'F') + kCtrlZ);
    EXPECT_EQ(m_line->read_until("\r\n+CMS ERROR: 304\r\n"), "\r\n+CMS ERROR: 304\r\n");
    EXPECT_EQ(m_line->command("AT"), "\r\nOK\r\n");
}

TEST_F(Modemsim, SurvivesGarbage) {
    ASSERT_NO_FATAL_FAILURE(start());
    std::mt19937 random(3);
    std::string garbage(20000, '\0');
    for (auto& byte : garbage) {
        byte = static_cast<char>(random() & 0xFF);
    }
    // Junk lines are ignored or refused, overlong ones refused whole.
    m_line->send(garbage);
    m_line->send(std::string(5000, 'A') + "\r");
    // ESC leaves PDU input should the junk have opened it.
    m_line->send(std::string(1, kEscape) + "\r");
    (void)m_line->read_until("never", 500ms);
    (void)m_line->command("ATE0");
    EXPECT_EQ(m_line->command("AT"), "\r\nOK\r\n");
    EXPECT_TRUE(m_child->running());
}

TEST_F(Modemsim, HangupFaultClosesAfterNMessages) {
    ASSERT_NO_FATAL_FAILURE(start({"--hangup-after", "1"}));
    const auto answer = send_part(encode_submit("+491701234567", "letzte")[0]);
    EXPECT_NE(answer.find("+CMGS: 0"), std::string::npos);
    EXPECT_TRUE(
        test::wait_until([&] { return !fs::exists(fs::symlink_status(link())); }, kAnswerTimeout));
    EXPECT_EQ(outbox_lines().size(), 1u);
}

// Debian's gammu as an independent host: if it cannot send through the
// simulator, the simulator is wrong.
class ModemsimGammu : public Modemsim {
  protected:
    test::CommandResult gammu_sendsms(const std::string& arguments) {
        const auto config = m_dir.path() / "gammurc";
        test::write_file(config, "[gammu]\ndevice = " + link().string() + "\nconnection = at\n");
        m_line.reset();  // gammu must be the only reader of the line
        return test::run_command("timeout 60 gammu -c '" + config.string() +
                                 "' sendsms TEXT +491701234567 " + arguments + " 2>&1");
    }
};

TEST_F(ModemsimGammu, SendsUmlautsAndEuro) {
    ASSERT_NO_FATAL_FAILURE(start());
    const std::string text = "Grüße: 5 € für Jürgen, Öl & Äpfel";
    const auto result = gammu_sendsms("-text '" + text + "'");
    ASSERT_EQ(result.status, 0) << result.output;
    const auto lines = outbox_lines();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].at("to").as_string(), "+491701234567");
    EXPECT_EQ(lines[0].at("text").as_string(), text);
    EXPECT_EQ(lines[0].at("parts").as_int64(), 1);
}

TEST_F(ModemsimGammu, SendsALongUnicodeTextInParts) {
    ASSERT_NO_FATAL_FAILURE(start());
    std::string text;
    for (int i = 0; i < 20; ++i) {
        text += "Привет, Jürgen! ";
    }
    const auto result =
        gammu_sendsms("-unicode -len " + std::to_string(text.size()) + " -text '" + text + "'");
    ASSERT_EQ(result.status, 0) << result.output;
    const auto lines = outbox_lines();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].at("text").as_string(), text);
    EXPECT_EQ(lines[0].at("parts").as_int64(), 5);
}

TEST_F(Modemsim, SigtermRemovesTheLink) {
    ASSERT_NO_FATAL_FAILURE(start());
    m_line.reset();
    EXPECT_EQ(m_child->stop(), 0);
    EXPECT_FALSE(fs::exists(fs::symlink_status(link())));
}

}  // namespace
}  // namespace otpbox::gsm
