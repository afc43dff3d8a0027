// tls csr, tls install, tls trust, tls allow, tls deny.

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <vector>

#include "console/console.hpp"
#include "file_io.hpp"
#include "openssl_handles.hpp"
#include "otpbox/firmware/clients_file.hpp"
#include "otpbox/provisioning/pki.hpp"
#include "otpbox/provisioning/tls_identity.hpp"
#include "x509_parts.hpp"

namespace otpbox::provisioning::console {

namespace {

constexpr std::string_view kDefaultCsrSubject = "CN=otpbox";
constexpr mode_t kPublicFile = S_IRUSR | S_IWUSR | S_IRGRP | S_IROTH;

std::vector<detail::X509Ptr> read_certificates(const std::string& pem) {
    std::vector<detail::X509Ptr> certificates;
    const detail::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    while (true) {
        detail::X509Ptr certificate(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
        if (!certificate) {
            break;
        }
        certificates.push_back(std::move(certificate));
    }
    ERR_clear_error();
    return certificates;
}

std::string time_text(const ASN1_TIME* time) {
    const detail::BioPtr bio(BIO_new(BIO_s_mem()));
    ASN1_TIME_print(bio.get(), time);
    char* data = nullptr;
    const auto size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
}

std::string pem_of(const std::vector<detail::X509Ptr>& certificates) {
    std::string pem;
    for (const auto& certificate : certificates) {
        pem += detail::certificate_pem(certificate.get());
    }
    return pem;
}

std::optional<api::Role> parse_role(std::string_view role) {
    if (role == "portal") {
        return api::Role::portal;
    }
    if (role == "monitor") {
        return api::Role::monitor;
    }
    return std::nullopt;
}

std::string_view role_name(api::Role role) {
    return role == api::Role::portal ? "portal" : "monitor";
}

// The subject read as certificates have it, or nullopt after saying why it
// cannot be one.
std::optional<detail::X509NamePtr> read_subject(const std::string& subject,
                                                const std::function<void(std::string_view)>& say) {
    try {
        return detail::parse_subject(subject);
    } catch (const PkiError& error) {
        say(std::string("That subject cannot be used: ") + error.what() +
            ".\nWrite it as certificates print it, most specific first, e.g.\n"
            "  CN=portal.example.net,O=Example GmbH,C=DE\n"
            "(openssl x509 -noout -subject -nameopt RFC2253). Nothing changed.\n");
        return std::nullopt;
    }
}

}  // namespace

void Console::tls_csr(std::span<const std::string> arguments) {
    // An unquoted subject with spaces arrives as several words.
    const std::string subject =
        arguments.empty() ? std::string(kDefaultCsrSubject) : join_words(arguments);
    if (!read_subject(subject, [this](std::string_view text) { say(text); })) {
        return;
    }
    const auto label = m_appliance.tls_key_label();
    auto hsm = m_appliance.shared_hsm();
    const auto made = make_tls_key(*hsm, label);
    say("TLS key " + label +
        (made == StepResult::created ? " made in the HSM." : " kept (it exists).") +
        "\nHave this request signed by the CA the portal trusts, then 'tls install':\n\n" +
        make_tls_csr(hsm, label, subject) + "\n");
    m_appliance.record("tls.csr", subject,
                       made == StepResult::created ? "new key" : "existing key");
}

void Console::tls_install(std::span<const std::string>) {
    const auto& api = m_appliance.config().api;
    if (api.key_label.empty()) {
        say("api.key_label is not set in " + m_appliance.config_file().string() +
            ":\nthe daemon uses the key file " + api.key_file.string() +
            ", not an HSM key.\nNothing changed.\n");
        return;
    }
    const auto pem = ask_pem("the server certificate, then any intermediate CAs");
    if (pem.empty()) {
        m_appliance.record("tls.install", "", "cancelled");
        return;
    }
    const auto chain = read_certificates(pem);
    if (chain.empty()) {
        say("No certificate in what was pasted; nothing changed.\n");
        return;
    }
    auto* leaf = chain.front().get();
    if (!certificate_fits_key(m_appliance.hsm(), api.key_label, pem)) {
        say("This certificate is not for the HSM's TLS key " + api.key_label +
            "; nothing changed.\n");
        m_appliance.record("tls.install", detail::name_rfc2253(X509_get_subject_name(leaf)),
                           "wrong key");
        return;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0) {
        say("This certificate has expired; nothing changed.\n");
        return;
    }
    // The token's copy first: when the HSM fails here, nothing has changed.
    (void)store_tls_certificate(m_appliance.hsm(), api.key_label, pem);
    detail::write_file_atomically(api.certificate_file, pem_of(chain), kPublicFile);
    const auto subject = detail::name_rfc2253(X509_get_subject_name(leaf));
    say("Installed " + subject + "\n  issuer  " + detail::name_rfc2253(X509_get_issuer_name(leaf)) +
        "\n  expires " + time_text(X509_get0_notAfter(leaf)) + "\n");
    m_appliance.record("tls.install", subject, "ok");
}

void Console::tls_trust(std::span<const std::string>) {
    const auto& api = m_appliance.config().api;
    const auto pem = ask_pem("the CA certificate(s) of the portal's client certificates");
    if (pem.empty()) {
        m_appliance.record("tls.trust", "", "cancelled");
        return;
    }
    const auto certificates = read_certificates(pem);
    if (certificates.empty()) {
        say("No certificate in what was pasted; nothing changed.\n");
        return;
    }
    for (const auto& certificate : certificates) {
        if (X509_check_ca(certificate.get()) == 0) {
            say(detail::name_rfc2253(X509_get_subject_name(certificate.get())) +
                " is not a CA certificate; nothing changed.\n");
            return;
        }
    }
    detail::write_file_atomically(api.ca_file, pem_of(certificates), kPublicFile);
    for (const auto& certificate : certificates) {
        const auto subject = detail::name_rfc2253(X509_get_subject_name(certificate.get()));
        say("Trusted " + subject + "\n  expires " +
            time_text(X509_get0_notAfter(certificate.get())) + "\n");
        m_appliance.record("tls.trust", subject, "ok");
    }
}

void Console::tls_allow(std::span<const std::string> arguments) {
    if (arguments.size() < 2) {
        say("Usage: tls allow SUBJECT ROLE, e.g.\n"
            "  tls allow \"CN=portal,O=Example\" portal\n");
        return;
    }
    // An unquoted subject with spaces arrives as several words: all but the last.
    const auto typed = join_words(arguments.first(arguments.size() - 1));
    const auto role = parse_role(arguments.back());
    if (!role) {
        say("The role is portal or monitor; nothing changed.\n");
        return;
    }
    constexpr std::size_t kMaxSubject = 256;
    if (typed.size() > kMaxSubject) {
        say("A subject of more than 256 characters is no client's; nothing changed.\n");
        return;
    }
    const auto name = read_subject(typed, [this](std::string_view text) { say(text); });
    if (!name) {
        return;
    }
    // otpboxd compares this form with the client certificate's subject.
    const auto subject = detail::name_rfc2253(name->get());
    if (const auto reversed = detail::reversed_order(name->get())) {
        say("This subject names " + *reversed +
            ".\nCertificates print the most specific attribute first (CN=...,OU=...,O=...,\n"
            "L=...,ST=...,C=...), so it matches only a certificate whose subject was\n"
            "made in the reverse of the usual order.\n");
        if (!confirm("Allow it in this order anyway?")) {
            say("Nothing changed. In the usual order:\n  tls allow \"" +
                detail::reversed_subject(name->get()) + "\" " + std::string(role_name(*role)) +
                "\n");
            return;
        }
    }
    const auto& api = m_appliance.config().api;
    if (api.clients_file.empty()) {
        say("api.clients_file is not set in the configuration; nothing changed.\n");
        return;
    }
    const auto own = firmware::read_clients_file(api.clients_file);
    const bool in_config =
        std::count_if(api.clients.begin(), api.clients.end(), [&](const auto& client) {
            return client.subject == subject;
        }) > std::count_if(own.begin(), own.end(), [&](const auto& client) {
            return client.subject == subject;
        });
    if (in_config) {
        const bool same_role = std::any_of(
            api.clients.begin(), api.clients.end(),
            [&](const auto& client) { return client.subject == subject && client.role == *role; });
        say(same_role ? "That subject is already allowed as " + std::string(role_name(*role)) +
                            " in " + m_appliance.config_file().string() + ". Nothing changed.\n"
                      : "That subject is listed in " + m_appliance.config_file().string() +
                            " itself;\nchange it there. Nothing changed.\n");
        return;
    }
    auto clients = own;
    std::erase_if(clients, [&](const auto& client) { return client.subject == subject; });
    clients.push_back({subject, *role});
    firmware::write_clients_file(api.clients_file, clients);
    say("Allowed " + subject + " as " + std::string(role_name(*role)) + ".\n");
    if (subject != typed) {
        say("That is the subject as certificates print it (bytes above 0x7f as \\XX):\n"
            "the form otpboxd compares.\n");
    }
    m_appliance.record("tls.allow", subject, role_name(*role));
}

void Console::tls_deny(std::span<const std::string> arguments) {
    if (arguments.empty()) {
        say("Usage: tls deny SUBJECT\n");
        return;
    }
    const auto typed = join_words(arguments);
    // As tls allow stores it; an entry written otherwise (by hand, or by an
    // older console) goes by what was typed.
    std::string subject = typed;
    try {
        subject = detail::canonical_subject(typed);
    } catch (const PkiError&) {
    }
    const auto& api = m_appliance.config().api;
    auto clients = api.clients_file.empty() ? std::vector<api::AllowedClient>{}
                                            : firmware::read_clients_file(api.clients_file);
    const auto removed = std::erase_if(clients, [&](const auto& client) {
        return client.subject == subject || client.subject == typed;
    });
    if (removed == 0) {
        const bool in_config =
            std::any_of(api.clients.begin(), api.clients.end(), [&](const auto& client) {
                return client.subject == subject || client.subject == typed;
            });
        say(in_config ? "That subject is listed in " + m_appliance.config_file().string() +
                            " itself;\nremove it there. Nothing changed.\n"
                      : "That subject is not allowed anyway; nothing changed.\n");
        return;
    }
    firmware::write_clients_file(api.clients_file, clients);
    say("Denied " + subject + ": new connections with it fail the handshake.\n");
    m_appliance.record("tls.deny", subject, "ok");
}

}  // namespace otpbox::provisioning::console
