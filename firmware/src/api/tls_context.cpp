#include "api/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/ssl/verify_context.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include "api/session_tickets.hpp"
#include "api/subject_name.hpp"

namespace otpbox::api {

namespace ssl = boost::asio::ssl;

namespace {

// BSI TR-02102-2 recommends these TLS 1.3 suites (AES-GCM); ChaCha20 is not on its list.
constexpr const char* kTls13Suites = "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256";
// BSI TR-02102-2, TLS 1.2: ephemeral ECDH with AES-GCM only; CBC suites,
// static RSA key exchange and finite-field DHE are left out on purpose.
constexpr const char* kTls12Suites =
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256";
// BSI TR-02102-2 groups: secp256r1, secp384r1 and the Brainpool curves. OpenSSL 3.0
// offers Brainpool only in TLS 1.2 (RFC 7027) and skips it for TLS 1.3.
constexpr const char* kGroups = "P-256:P-384:brainpoolP384r1:brainpoolP256r1";
constexpr const char* kFallbackGroups = "P-256:P-384";
// ECDSA and RSA-PSS with SHA-2, for the server's and the client's
// signatures; SHA-1 and PKCS#1 v1.5 signatures are not offered.
constexpr const char* kSignatureAlgorithms =
    "ECDSA+SHA384:ECDSA+SHA256:rsa_pss_rsae_sha384:rsa_pss_rsae_sha256:"
    "rsa_pss_rsae_sha512:rsa_pss_pss_sha384:rsa_pss_pss_sha256:rsa_pss_pss_sha512";
constexpr int kMaxChainDepth = 4;
constexpr unsigned char kSessionContext[] = "otpbox-api";

std::string openssl_reason() {
    const unsigned long code = ERR_get_error();
    ERR_clear_error();
    if (code == 0) {
        return "unknown OpenSSL error";
    }
    char text[256];
    ERR_error_string_n(code, text, sizeof(text));
    return text;
}

void require(int ok, const std::string& what) {
    if (ok != 1) {
        throw std::runtime_error("TLS: " + what + ": " + openssl_reason());
    }
}

void set_protocols(SSL_CTX* ctx) {
    require(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION), "minimum protocol TLS 1.2");
    require(SSL_CTX_set_ciphersuites(ctx, kTls13Suites), "TLS 1.3 suites");
    require(SSL_CTX_set_cipher_list(ctx, kTls12Suites), "TLS 1.2 suites");
    if (SSL_CTX_set1_groups_list(ctx, kGroups) != 1) {
        ERR_clear_error();
        require(SSL_CTX_set1_groups_list(ctx, kFallbackGroups), "groups");
    }
    require(SSL_CTX_set1_sigalgs_list(ctx, kSignatureAlgorithms), "signature algorithms");
    require(SSL_CTX_set1_client_sigalgs_list(ctx, kSignatureAlgorithms),
            "client signature algorithms");
    SSL_CTX_set_options(
        ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
}

// Resumption only through tickets sealed by this context's rotating keys,
// and only for a client that would pass the handshake now
// (api/session_tickets.hpp). There is no session cache on the server. A
// lifetime of zero turns resumption off.
void set_resumption(SSL_CTX* ctx, const TlsConfig& tls) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    require(SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1),
            "session id context");
    if (tls.ticket_lifetime.count() > 0) {
        enable_session_tickets(ctx, tls.ticket_lifetime, tls.clients);
        return;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    require(SSL_CTX_set_num_tickets(ctx, 0), "no TLS 1.3 tickets");
}

// OpenSSL compares the key with the certificate already in SSL_CTX_use_PrivateKey
// (X509_check_private_key), so a key for another certificate fails there.
void require_key(int ok, const std::string& key, const std::string& certificate) {
    if (ok == 1) {
        return;
    }
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
        ERR_clear_error();
        throw std::runtime_error("TLS: " + key + " does not match the certificate " + certificate);
    }
    require(ok, key);
}

void load_identity(SSL_CTX* ctx, const TlsConfig& tls) {
    const auto certificate = tls.certificate_file.string();
    require(SSL_CTX_use_certificate_chain_file(ctx, certificate.c_str()),
            "server certificate " + certificate);
    if (tls.key) {
        require_key(SSL_CTX_use_PrivateKey(ctx, tls.key.get()), "the server key object",
                    certificate);
    } else {
        const auto key = tls.key_file.string();
        require_key(SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM),
                    "the server key " + key, certificate);
    }
    require_key(SSL_CTX_check_private_key(ctx), "the server key", certificate);
}

// Only the configured CA: the system's trust store is never loaded, so no
// public CA can vouch for a client.
void load_client_trust(SSL_CTX* ctx, const TlsConfig& tls) {
    const auto ca = tls.ca_file.string();
    require(SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr), "client CA " + ca);
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca.c_str());
    if (names == nullptr) {
        throw std::runtime_error("TLS: client CA " + ca + ": no certificate names");
    }
    SSL_CTX_set_client_CA_list(ctx, names);

    if (!tls.crl_file) {
        return;
    }
    const auto crl = tls.crl_file->string();
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    X509_LOOKUP* lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
    if (lookup == nullptr || X509_load_crl_file(lookup, crl.c_str(), X509_FILETYPE_PEM) < 1) {
        throw std::runtime_error("TLS: CRL " + crl + ": " + openssl_reason());
    }
    // The leaf's revocation is checked; the CA is the appliance's own trust
    // anchor and is replaced, not revoked.
    require(X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK), "CRL check");
}

// Runs for every certificate of the chain. The leaf (depth 0) must also be on
// the allow-list; refusing it here makes OpenSSL send an alert, so the client
// learns in the handshake instead of by a closed connection later.
void require_allowed_subject(SSL_CTX* ctx, ssl::context& context,
                             std::vector<AllowedClient> clients) {
    SSL_CTX_set_verify_depth(ctx, kMaxChainDepth);
    context.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    context.set_verify_callback(
        [clients = std::move(clients)](bool preverified, ssl::verify_context& verify) {
            X509_STORE_CTX* store = verify.native_handle();
            if (!preverified || X509_STORE_CTX_get_error_depth(store) != 0) {
                return preverified;
            }
            const X509* leaf = X509_STORE_CTX_get_current_cert(store);
            if (leaf == nullptr || !role_of(clients, rfc2253_subject(*leaf))) {
                X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
                return false;
            }
            return true;
        });
}

}  // namespace

std::unique_ptr<ssl::context> make_tls_context(const TlsConfig& tls) {
    auto context = std::make_unique<ssl::context>(ssl::context::tls_server);
    SSL_CTX* ctx = context->native_handle();
    ERR_clear_error();
    set_protocols(ctx);
    load_identity(ctx, tls);
    load_client_trust(ctx, tls);
    require_allowed_subject(ctx, *context, tls.clients);
    set_resumption(ctx, tls);
    return context;
}

}  // namespace otpbox::api
