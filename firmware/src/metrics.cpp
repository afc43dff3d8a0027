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
