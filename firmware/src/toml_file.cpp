#include "toml_file.hpp"

#include <sstream>

#include "otpbox/firmware/config.hpp"

namespace otpbox::firmware::detail {

toml::table parse_toml_file(const std::filesystem::path& file) {
    try {
        return toml::parse_file(file.string());
    } catch (const toml::parse_error& error) {
        std::ostringstream message;
        message << file.string();
        if (error.source().begin.line > 0) {  // 0: the file could not be read at all
            message << ":" << error.source().begin.line;
        }
        message << ": " << error.description();
        throw ConfigError(message.str());
    }
}

}  // namespace otpbox::firmware::detail
