#include "client_list.hpp"

#include <string>

#include "otpbox/firmware/config.hpp"

namespace otpbox::firmware::detail {

namespace {

[[noreturn]] void fail(const std::filesystem::path& file, std::string_view key,
                       std::string_view problem) {
    throw ConfigError(file.string() + ": " + std::string(key) + ": " + std::string(problem));
}

std::string required_string(const std::filesystem::path& file, const toml::table& table,
                            const std::string& key, std::string_view field) {
    const auto* node = table.get(field);
    if (node == nullptr) {
        fail(file, key + "." + std::string(field), "is missing");
    }
    const auto value = node->value<std::string>();
    if (!value || !node->is_string()) {
        fail(file, key + "." + std::string(field), "must be a string");
    }
    if (value->empty()) {
        fail(file, key + "." + std::string(field), "is empty");
    }
    return *value;
}

api::Role parse_role(const std::filesystem::path& file, const std::string& key,
                     const std::string& role) {
    if (role == role_name(api::Role::portal)) {
        return api::Role::portal;
    }
    if (role == role_name(api::Role::monitor)) {
        return api::Role::monitor;
    }
    fail(file, key, "role must be \"portal\" or \"monitor\", not \"" + role + "\"");
}

}  // namespace

std::vector<api::AllowedClient> read_client_list(const std::filesystem::path& file,
                                                 const toml::table& root, std::string_view key) {
    std::vector<api::AllowedClient> clients;
    const auto node = root.at_path(key);
    if (!node) {
        return clients;
    }
    const auto* list = node.as_array();
    if (list == nullptr) {
        fail(file, key, "must be a list of tables ([[" + std::string(key) + "]])");
    }
    for (std::size_t i = 0; i < list->size(); ++i) {
        const std::string entry = std::string(key) + "[" + std::to_string(i) + "]";
        const auto* table = (*list)[i].as_table();
        if (table == nullptr) {
            fail(file, entry, "must be a table with subject and role");
        }
        api::AllowedClient client;
        client.subject = required_string(file, *table, entry, "subject");
        client.role =
            parse_role(file, entry + ".role", required_string(file, *table, entry, "role"));
        clients.push_back(std::move(client));
    }
    return clients;
}

std::string_view role_name(api::Role role) noexcept {
    return role == api::Role::monitor ? "monitor" : "portal";
}

}  // namespace otpbox::firmware::detail
