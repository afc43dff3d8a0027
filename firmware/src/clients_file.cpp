#include "otpbox/firmware/clients_file.hpp"

#include <toml++/toml.h>

#include <sstream>
#include <stdexcept>
#include <system_error>

#include "atomic_file.hpp"
#include "client_list.hpp"
#include "otpbox/firmware/config.hpp"
#include "toml_file.hpp"

namespace otpbox::firmware {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kListKey = "clients";
constexpr mode_t kFileMode = 0644;  // subjects and roles are not secret

constexpr std::string_view kHeader =
    "# API clients allowed besides [[api.clients]] of the configuration.\n"
    "# Kept by the technician console (tls allow, tls deny); otpboxd rereads it while it runs.\n"
    "# subject: RFC 2253 form (openssl x509 -noout -subject -nameopt RFC2253)\n"
    "# role: \"portal\" (every call) or \"monitor\" (health and metrics)\n\n";

std::string render(const std::vector<api::AllowedClient>& clients) {
    toml::array list;
    for (const auto& client : clients) {
        if (client.subject.empty()) {
            throw std::invalid_argument("an allowed client needs a subject");
        }
        list.push_back(toml::table{{"subject", client.subject},
                                   {"role", std::string(detail::role_name(client.role))}});
    }
    std::ostringstream text;
    text << kHeader;
    if (!list.empty()) {
        text << toml::table{{kListKey, std::move(list)}} << "\n";
    }
    return text.str();
}

}  // namespace

std::vector<api::AllowedClient> read_clients_file(const fs::path& file) {
    std::error_code error;
    if (!fs::exists(file, error)) {
        if (error) {
            throw ConfigError(file.string() + ": " + error.message());
        }
        return {};
    }
    // toml++ reads a folder as an empty file: nobody allowed, and the
    // console's next write would fail.
    if (fs::is_directory(file, error)) {
        throw ConfigError(file.string() + ": is a folder, not a clients file");
    }
    return detail::read_client_list(file, detail::parse_toml_file(file), kListKey);
}

void write_clients_file(const fs::path& file, const std::vector<api::AllowedClient>& clients) {
    detail::write_file_atomically(file, render(clients), kFileMode);
}

}  // namespace otpbox::firmware
