#include "otpbox/firmware/log_text.hpp"

namespace otpbox::firmware {

std::string quotable(std::string_view text) {
    std::string field(text);
    for (auto& c : field) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == '"') {
            c = '\'';
        } else if (byte < 0x20 || byte == 0x7f) {
            c = ' ';
        }
    }
    return field;
}

}  // namespace otpbox::firmware
