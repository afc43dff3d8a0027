// The metrics' text format: each family's lines together under one HELP and
// one TYPE, as the Prometheus text format (0.0.4) requires.

#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "otpbox/firmware/metrics.hpp"

namespace otpbox::firmware {
namespace {

// The family a line belongs to: the name of a sample, or the name a HELP
// or TYPE line is about.
std::string family_of(const std::string& line) {
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
        const auto rest = line.substr(7);
        return rest.substr(0, rest.find(' '));
    }
    return line.substr(0, line.find_first_of("{ "));
}

struct Family {
    int blocks = 0;
    int types = 0;
    int helps = 0;
    int samples = 0;
};

std::map<std::string, Family> families_of(const std::string& text) {
    std::map<std::string, Family> families;
    std::istringstream lines(text);
    std::string line;
    std::string previous;
    while (std::getline(lines, line)) {
        const auto name = family_of(line);
        auto& family = families[name];
        if (name != previous) {
            ++family.blocks;
        }
        family.types += line.starts_with("# TYPE ") ? 1 : 0;
        family.helps += line.starts_with("# HELP ") ? 1 : 0;
        family.samples += line.starts_with("#") ? 0 : 1;
        previous = name;
    }
    return families;
}

gsm::ModemHealth modem(const std::string& name, const std::string& state, std::size_t sent) {
    gsm::ModemHealth health;
    health.name = name;
    health.state = state;
    health.sent = sent;
    health.signal_rssi = 17;
    return health;
}

TEST(Metrics_Modems, EachFamilyIsOneBlockWithOneTypeAcrossModems) {
    std::string out;
    append_modem_metrics(out, {modem("modem0", "ready", 4), modem("modem1", "failed", 2),
                               modem("modem2", "sim_locked", 0)});

    const auto families = families_of(out);
    ASSERT_EQ(families.size(), 5u) << out;
    for (const auto& [name, family] : families) {
        EXPECT_EQ(family.blocks, 1) << name << "\n" << out;
        EXPECT_EQ(family.types, 1) << name << "\n" << out;
        EXPECT_EQ(family.helps, 1) << name << "\n" << out;
        EXPECT_EQ(family.samples, 3) << name << "\n" << out;
    }
    EXPECT_NE(out.find("otpbox_modem_ready{modem=\"modem0\"} 1\n"
                       "otpbox_modem_ready{modem=\"modem1\"} 0\n"
                       "otpbox_modem_ready{modem=\"modem2\"} 0\n"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("otpbox_modem_sms_sent_total{modem=\"modem1\"} 2\n"), std::string::npos)
        << out;
}

TEST(Metrics_Modems, NoModemsNoLines) {
    std::string out;
    append_modem_metrics(out, {});
    EXPECT_EQ(out, "");
}

}  // namespace
}  // namespace otpbox::firmware
