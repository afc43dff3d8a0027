// status.

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <boost/json.hpp>

#include "console/console.hpp"
#include "openssl_handles.hpp"
#include "otpbox/firmware/clock.hpp"
#include "otpbox/firmware/status_file.hpp"
#include "otpbox/firmware/version.hpp"
#include "otpbox/provisioning/keys.hpp"
#include "x509_parts.hpp"

namespace otpbox::provisioning::console {

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

std::string padded(std::string_view label) {
    std::string text(label);
    text.resize(14, ' ');
    return text;
}

// "CN=localhost, expires 2027-03-04 (89 days)" or what is wrong with the file.
std::string certificate_line(const fs::path& file) {
    if (file.empty() || !fs::exists(file)) {
        return "missing";
    }
    try {
        const auto certificate = detail::read_certificate(file);
        const auto subject = detail::name_rfc2253(X509_get_subject_name(certificate.get()));
        int days = 0;
        int seconds = 0;
        ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notAfter(certificate.get()));
        return subject +
               (days < 0 ? ", EXPIRED" : ", expires in " + std::to_string(days) + " days");
    } catch (const std::exception&) {
        return "unreadable: " + file.string();
    }
}

// label, then text in lines of at most 80 columns, continued under the text.
std::string wrapped(std::string_view label, const std::string& text) {
    constexpr std::size_t kWidth = 80 - 14;
    std::string out = padded(label);
    std::size_t start = 0;
    while (text.size() - start > kWidth) {
        auto cut = text.rfind(' ', start + kWidth);
        if (cut == std::string::npos || cut <= start) {
            cut = start + kWidth;
        }
        out += text.substr(start, cut - start) + "\n" + padded("");
        start = text[cut] == ' ' ? cut + 1 : cut;
    }
    return out + text.substr(start) + "\n";
}

std::string text_of(const json::value* value) {
    if (value == nullptr) {
        return "?";
    }
    if (value->is_string()) {
        return std::string(value->as_string());
    }
    return json::serialize(*value);
}

}  // namespace

void Console::status(std::span<const std::string>) {
    const auto& config = m_appliance.config();
    if (!m_config_problem.empty()) {
        say(wrapped("Configuration",
                    "BROKEN: " + m_config_problem + ". What follows is as it was read last."));
    }
    const auto daemon = firmware::read_status_file(firmware::status_file_for(config.file));
    if (daemon && daemon->alive && !daemon->running) {
        // The daemon writes its status from its poll, which waits while a
        // call into the HSM does.
        say(padded("Daemon") + "running, pid " + text_of(daemon->body.if_contains("pid")) +
            ", but its status is " + std::to_string(daemon->age.count()) + " s old\n" + padded("") +
            "Its own work is held up, most likely by an HSM that does not answer.\n");
    } else if (!daemon || !daemon->running) {
        say(padded("Daemon") + "NOT RUNNING" +
            (daemon ? " (last status " + std::to_string(daemon->age.count()) + " s ago)" : "") +
            "\n" + padded("") + "The console still provisions; changes apply when it starts.\n");
    } else {
        const auto* provisioned = daemon->body.if_contains("provisioned");
        const bool serving =
            provisioned != nullptr && provisioned->is_bool() && provisioned->as_bool();
        const auto* missing = daemon->body.if_contains("missing");
        const bool complete =
            missing == nullptr || !missing->is_array() || missing->as_array().empty();
        const auto* api_error = daemon->body.if_contains("api_error");
        // Provisioned, but the API could not start (its port in use).
        const bool held_up = !serving && complete && api_error != nullptr;
        say(padded("Daemon") + "running, pid " + text_of(daemon->body.if_contains("pid")) +
            (serving ? ", serving the API\n"
                     : (held_up ? ", NOT SERVING THE API\n" : ", NOT PROVISIONED\n")));
        if (held_up) {
            say(wrapped("  API", text_of(api_error)));
        }
        if (!complete) {
            for (const auto& part : missing->as_array()) {
                say(wrapped("  missing", text_of(&part)));
            }
        }
        // Settings changed in the file that the daemon takes only at a start.
        const auto* restart = daemon->body.if_contains("restart_needed");
        if (restart != nullptr && restart->is_array() && !restart->as_array().empty()) {
            std::string keys;
            for (const auto& key : restart->as_array()) {
                keys += (keys.empty() ? "" : ", ") + text_of(&key);
            }
            say(wrapped("  RESTART", "needed for " + keys +
                                         " (changed since it started; not applied until then)"));
        }
    }
    // The HSM as the daemon last saw it, when that was not well.
    if (daemon) {
        const auto* hsm = daemon->body.if_contains("health");
        hsm = hsm != nullptr && hsm->is_object() ? hsm->as_object().if_contains("hsm") : nullptr;
        const auto* state =
            hsm != nullptr && hsm->is_object() ? hsm->as_object().if_contains("state") : nullptr;
        if (state != nullptr && state->is_string() && state->as_string() != "ok") {
            const auto* detail = hsm->as_object().if_contains("detail");
            say(wrapped("  its HSM", text_of(state) + (detail != nullptr ? ": " + text_of(detail)
                                                                         : std::string())));
        }
        // The audit log no longer following on from its anchor, as the
        // daemon last found it.
        const auto* health = daemon->body.if_contains("health");
        const auto* audit = health != nullptr && health->is_object()
                                ? health->as_object().if_contains("audit")
                                : nullptr;
        const auto* audit_ok =
            audit != nullptr && audit->is_object() ? audit->as_object().if_contains("ok") : nullptr;
        if (audit_ok != nullptr && audit_ok->is_bool() && !audit_ok->as_bool()) {
            say(wrapped("  audit log",
                        "BROKEN: " + text_of(audit->as_object().if_contains("detail")) +
                            " ('audit verify')"));
        }
    }

    const bool token = m_appliance.token_initialised();
    say(padded("HSM token") + config.hsm.token_label +
        (token ? ", initialised\n" : ", NOT INITIALISED ('hsm init')\n"));
    if (token) {
        std::size_t present = 0;
        std::string absent;
        try {
            auto& hsm = m_appliance.hsm();
            for (const auto& key : appliance_keys()) {
                if (hsm.has_key(key.label)) {
                    ++present;
                } else {
                    absent += " " + key.label;
                }
            }
            say(padded("Keys") + std::to_string(present) + " of " +
                std::to_string(appliance_keys().size()) + " present" +
                (absent.empty() ? "" : "; missing:" + absent) + "\n");
            const auto label = m_appliance.tls_key_label();
            if (config.api.key_label.empty()) {
                say(padded("TLS key") + "in the file " + config.api.key_file.filename().string() +
                    " (api.key), not in the HSM\n");
            } else {
                say(padded("TLS key") + label +
                    (hsm.has_key(label) ? " in the HSM\n" : " missing ('tls csr')\n"));
            }
        } catch (const std::exception& error) {
            m_appliance.forget_hsm();
            say(padded("Keys") + "cannot log in: " + error.what() + "\n");
        }
    }
    say(wrapped("Certificate", certificate_line(config.api.certificate_file)));
    say(wrapped("Portal CA", certificate_line(config.api.ca_file)));
    if (config.api.clients.empty()) {
        say(padded("Clients") + "none allowed ('tls allow')\n");
    }
    for (const auto& client : config.api.clients) {
        say(wrapped("Client",
                    (client.role == api::Role::portal ? "portal  " : "monitor ") + client.subject));
    }
    modem_list({});

    std::error_code error;
    const auto size = fs::file_size(config.database, error);
    std::error_code no_wal;
    const auto wal = fs::file_size(fs::path(config.database.string() + "-wal"), no_wal);
    say(padded("Database") + config.database.filename().string() +
        (error ? ", not created yet\n"
               : ", " + std::to_string((size + (no_wal ? 0 : wal)) / 1024) +
                     " KiB with its write-ahead log\n"));
    say(padded("Clock") +
        (firmware::clock_synchronized() ? "synchronised\n" : "NOT synchronised\n"));
    say(padded("Version") + std::string(firmware::kVersion) + "\n");
    m_appliance.record("status", "", "shown");
}

void Console::modem_list_command(std::span<const std::string> arguments) {
    modem_list(arguments);
    m_appliance.record("modem.list", "", "shown");
}

void Console::modem_list(std::span<const std::string>) {
    const auto& config = m_appliance.config();
    const auto daemon = firmware::read_status_file(firmware::status_file_for(config.file));
    const json::array* seen = nullptr;
    if (daemon && daemon->running) {
        if (const auto* health = daemon->body.if_contains("health");
            health != nullptr && health->is_object()) {
            if (const auto* modems = health->as_object().if_contains("modems");
                modems != nullptr && modems->is_array()) {
                seen = &modems->as_array();
            }
        }
    }
    if (config.modems.empty()) {
        say(padded("Modems") + "none configured\n");
    }
    for (const auto& modem : config.modems) {
        std::string line = padded("Modem") + modem.name + " " + modem.device.string();
        const json::object* live = nullptr;
        for (std::size_t i = 0; seen != nullptr && i < seen->size(); ++i) {
            const auto& entry = (*seen)[i];
            if (entry.is_object() && text_of(entry.as_object().if_contains("name")) == modem.name) {
                live = &entry.as_object();
            }
        }
        if (live == nullptr) {
            line += "\n" + padded("") + "no state (daemon not serving)";
        } else {
            line += "\n" + padded("") + text_of(live->if_contains("state")) + ", registration " +
                    text_of(live->if_contains("registration")) + ", rssi " +
                    text_of(live->if_contains("signal_rssi")) + ", sent " +
                    text_of(live->if_contains("sent")) + ", failed " +
                    text_of(live->if_contains("failed"));
            // A modem that is not ready says why; a person has to act on it.
            const auto state = text_of(live->if_contains("state"));
            const auto* error = live->if_contains("last_error");
            if (state != "ready" && error != nullptr && error->is_string() &&
                !error->as_string().empty()) {
                const auto reason = wrapped("", text_of(error));
                line += "\n" + reason.substr(0, reason.size() - 1);
            }
        }
        say(line + "\n");
    }
    if (daemon && daemon->running) {
        if (const auto* health = daemon->body.if_contains("health");
            health != nullptr && health->is_object()) {
            if (const auto* queue = health->as_object().if_contains("queue");
                queue != nullptr && queue->is_object()) {
                const auto* oldest = queue->as_object().if_contains("oldest_age_seconds");
                say(padded("SMS queue") + text_of(queue->as_object().if_contains("depth")) +
                    " waiting" +
                    (oldest != nullptr && !oldest->is_null()
                         ? ", the oldest for " + text_of(oldest) + " s\n"
                         : "\n"));
            }
        }
    }
}

}  // namespace otpbox::provisioning::console
