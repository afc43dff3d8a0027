#include "tls_identity.hpp"

#include "otpbox/hsm/tls_key.hpp"

namespace otpbox::firmware::detail {

api::TlsConfig TlsIdentity::tls_config(const ApiConfig& api) {
    api::TlsConfig tls;
    tls.ca_file = api.ca_file;
    tls.certificate_file = api.certificate_file;
    tls.clients = api.clients;
    tls.ticket_lifetime = api.ticket_lifetime;
    if (!api.crl_file.empty()) {
        tls.crl_file = api.crl_file;
    }
    if (api.key_label.empty()) {
        tls.key_file = api.key_file;
    } else {
        tls.key = hsm_key(api.key_label);
    }
    return tls;
}

// One key object serves every reload while the label and the token's pair
// stay the same. A pair made again under the same label (a new TLS key from
// the console) has another public key, and the object carries the public key
// it was made with: it is made again, or it would not match the new
// certificate.
std::shared_ptr<EVP_PKEY> TlsIdentity::hsm_key(const std::string& label) {
    auto public_key = m_hsm->public_key_der(label);
    if (!m_key || label != m_label || public_key != m_public_key) {
        m_key = std::shared_ptr<EVP_PKEY>(hsm::hsm_private_key(m_hsm, label, m_sign_deadline));
        m_label = label;
        m_public_key = std::move(public_key);
    }
    return m_key;
}

std::optional<std::string> hsm_tls_key_problem(hsm::Hsm& hsm, std::string_view label) {
    const std::string name(label);
    for (const auto& key : hsm.list_keys()) {
        if (key.label != label) {
            continue;
        }
        if (key.kind == hsm::KeyKind::ec_p256) {
            return std::nullopt;
        }
        return "an EC P-256 key pair as the TLS key: " + name + " in the HSM is another kind";
    }
    return "the TLS key pair " + name + " in the HSM (api.key_label)";
}

}  // namespace otpbox::firmware::detail
