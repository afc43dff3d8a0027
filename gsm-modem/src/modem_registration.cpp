#include <charconv>
#include <vector>

#include "otpbox/gsm/modem.hpp"

namespace otpbox::gsm {
namespace {

[[nodiscard]] std::vector<std::string_view> split_fields(std::string_view text) {
    std::vector<std::string_view> fields;
    std::size_t start = 0;
    for (std::size_t comma; (comma = text.find(',', start)) != std::string_view::npos;
         start = comma + 1) {
        fields.push_back(text.substr(start, comma - start));
    }
    fields.push_back(text.substr(start));
    for (auto& field : fields) {
        while (!field.empty() && field.front() == ' ') {
            field.remove_prefix(1);
        }
    }
    return fields;
}

[[nodiscard]] std::optional<int> to_int(std::string_view text) {
    int value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

[[nodiscard]] Registration from_stat(int stat) noexcept {
    // TS 27.007 7.2 <stat>; 6 and up are SMS-only and emergency variants of
    // home (6, 9) and roaming (7, 10).
    switch (stat) {
        case 0:
            return Registration::not_searching;
        case 1:
        case 6:
        case 9:
            return Registration::home;
        case 2:
            return Registration::searching;
        case 3:
            return Registration::denied;
        case 5:
        case 7:
        case 10:
            return Registration::roaming;
        default:
            return Registration::unknown;
    }
}

}  // namespace

std::string_view registration_name(Registration registration) noexcept {
    switch (registration) {
        case Registration::home:
            return "home";
        case Registration::roaming:
            return "roaming";
        case Registration::searching:
            return "searching";
        case Registration::denied:
            return "denied";
        case Registration::not_searching:
            return "not searching";
        case Registration::unknown:
            break;
    }
    return "unknown";
}

std::optional<Registration> parse_registration(std::string_view line) {
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) {
        return std::nullopt;
    }
    const auto name = line.substr(0, colon);
    if (name != "+CREG" && name != "+CEREG" && name != "+CGREG") {
        return std::nullopt;
    }
    const auto fields = split_fields(line.substr(colon + 1));
    // The read form starts with <n>; in the URC form the second field, if
    // any, is the quoted area code.
    const bool read_form = fields.size() >= 2 && !fields[1].starts_with('"');
    const auto stat = to_int(read_form ? fields[1] : fields[0]);
    if (!stat) {
        return std::nullopt;
    }
    return from_stat(*stat);
}

}  // namespace otpbox::gsm
