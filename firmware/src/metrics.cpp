#include "otpbox/firmware/metrics.hpp"

#include <sstream>

namespace otpbox::firmware {

void Metrics::count_response(unsigned status) {
    const auto index = status / 100;
    if (index < m_responses.size()) {
        ++m_responses[index];
    }
}

void append_metric(std::string& out, const std::string& name, const std::string& help,
                   const std::string& type, const std::string& labels, double value) {
    if (!help.empty()) {
        out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    }
    std::ostringstream line;
    line << name;
    if (!labels.empty()) {
        line << "{" << labels << "}";
    }
    line << " " << value << "\n";
    out += line.str();
}

void append_modem_metrics(std::string& out, const std::vector<gsm::ModemHealth>& modems) {
    const struct {
        const char* name;
        const char* help;
        const char* type;
        double (*value)(const gsm::ModemHealth&);
    } families[] = {
        {"otpbox_modem_ready", "1 when the modem can send", "gauge",
         [](const gsm::ModemHealth& modem) { return modem.state == "ready" ? 1.0 : 0.0; }},
        {"otpbox_modem_signal_rssi", "AT+CSQ rssi (99 unknown)", "gauge",
         [](const gsm::ModemHealth& modem) { return static_cast<double>(modem.signal_rssi); }},
        {"otpbox_modem_sms_sent_total", "SMS sent by the modem", "counter",
         [](const gsm::ModemHealth& modem) { return static_cast<double>(modem.sent); }},
        {"otpbox_modem_sms_failed_total", "SMS the modem failed to send", "counter",
         [](const gsm::ModemHealth& modem) { return static_cast<double>(modem.failed); }},
        {"otpbox_modem_resets_total", "resets after a +CMGS whose final result never came",
         "counter",
         [](const gsm::ModemHealth& modem) { return static_cast<double>(modem.resets); }},
    };
    for (const auto& family : families) {
        bool first = true;
        for (const auto& modem : modems) {
            append_metric(out, family.name, first ? family.help : "", family.type,
                          "modem=\"" + modem.name + "\"", family.value(modem));
            first = false;
        }
    }
}

std::string Metrics::render() const {
    std::string out;
    for (std::size_t i = 1; i < m_responses.size(); ++i) {
        append_metric(out, "otpbox_http_responses_total",
                      i == 1 ? "API answers by status class" : "", "counter",
                      "class=\"" + std::to_string(i) + "xx\"",
                      static_cast<double>(m_responses[i].load()));
    }
    return out;
}

}  // namespace otpbox::firmware
