#include "api/session_tickets.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "api/subject_name.hpp"

namespace otpbox::api {

namespace {

constexpr std::size_t kKeySize = 32;  // AES-256 and the HMAC-SHA256 key alike
constexpr int kTicketsPerHandshake = 1;

}  // namespace

struct TicketKeys::Key {
    std::array<unsigned char, kNameSize> name{};
    std::array<unsigned char, kKeySize> cipher_key{};
    std::array<unsigned char, kKeySize> mac_key{};
    Clock::time_point made;
};

void TicketKeys::Wipe::operator()(Key* key) const {
    OPENSSL_cleanse(key, sizeof(*key));
    delete key;
}

TicketKeys::TicketKeys(std::chrono::seconds lifetime) : m_lifetime(lifetime) {}

TicketKeys::~TicketKeys() = default;

TicketKeys::KeyPtr TicketKeys::make_key(Clock::time_point now) {
    KeyPtr key(new Key);
    key->made = now;
    const bool drawn = RAND_bytes(key->name.data(), kNameSize) == 1 &&
                       RAND_priv_bytes(key->cipher_key.data(), kKeySize) == 1 &&
                       RAND_priv_bytes(key->mac_key.data(), kKeySize) == 1;
    if (!drawn) {
        return nullptr;
    }
    return key;
}

// The current key seals for one lifetime; then it becomes the previous key
// and opens for one more. After a long quiet spell both may be gone at once.
void TicketKeys::rotate(Clock::time_point now) {
    if (m_previous && now - m_previous->made >= 2 * m_lifetime) {
        m_previous.reset();
    }
    if (m_current && now - m_current->made < m_lifetime) {
        return;
    }
    if (m_current && now - m_current->made < 2 * m_lifetime) {
        m_previous = std::move(m_current);
    }
    m_current = make_key(now);
}

bool TicketKeys::ready(const Key& key, const unsigned char* iv, EVP_CIPHER_CTX* cipher,
                       EVP_MAC_CTX* mac, bool sealing) {
    const int cipher_ok =
        sealing ? EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.cipher_key.data(), iv)
                : EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.cipher_key.data(), iv);
    char digest[] = "SHA256";
    const std::array<OSSL_PARAM, 3> params{
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
                                          const_cast<unsigned char*>(key.mac_key.data()), kKeySize),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end()};
    return cipher_ok == 1 && EVP_MAC_CTX_set_params(mac, params.data()) == 1;
}

int TicketKeys::seal(std::span<unsigned char, kNameSize> name, unsigned char* iv,
                     EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, Clock::time_point now) {
    const std::lock_guard lock(m_mutex);
    rotate(now);
    if (!m_current || RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1) {
        return 0;
    }
    std::copy(m_current->name.begin(), m_current->name.end(), name.begin());
    return ready(*m_current, iv, cipher, mac, true) ? 1 : 0;
}

int TicketKeys::open(std::span<const unsigned char, kNameSize> name, const unsigned char* iv,
                     EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, Clock::time_point now) {
    const std::lock_guard lock(m_mutex);
    rotate(now);
    const auto named = [&](const KeyPtr& key) {
        return key && std::equal(name.begin(), name.end(), key->name.begin());
    };
    if (named(m_current)) {
        return ready(*m_current, iv, cipher, mac, false) ? 1 : 0;
    }
    if (named(m_previous)) {
        return ready(*m_previous, iv, cipher, mac, false) ? 2 : 0;
    }
    return 0;
}

bool still_allowed(X509_STORE* store, X509* leaf, std::span<const AllowedClient> clients) {
    if (store == nullptr || leaf == nullptr || !role_of(clients, rfc2253_subject(*leaf))) {
        return false;
    }
    const std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> check(
        X509_STORE_CTX_new(), X509_STORE_CTX_free);
    if (!check || X509_STORE_CTX_init(check.get(), store, leaf, nullptr) != 1) {
        return false;
    }
    // The purpose and trust a server checks a client's certificate for in
    // the handshake.
    return X509_STORE_CTX_set_default(check.get(), "ssl_client") == 1 &&
           X509_verify_cert(check.get()) == 1;
}

namespace {

// What the context's callbacks need; owned by the SSL_CTX through its
// ex_data, so it lives exactly as long as the context.
struct TicketState {
    TicketState(std::chrono::seconds lifetime, std::vector<AllowedClient> allowed)
        : keys(lifetime), clients(std::move(allowed)) {}
    TicketKeys keys;
    std::vector<AllowedClient> clients;
};

void free_state(void* /*parent*/, void* state, CRYPTO_EX_DATA* /*data*/, int /*index*/,
                long /*argl*/, void* /*argp*/) {
    delete static_cast<TicketState*>(state);
}

int state_index() {
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_state);
    return index;
}

TicketState* state_of(const SSL* ssl) {
    return static_cast<TicketState*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), state_index()));
}

int on_ticket_key(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                  EVP_MAC_CTX* mac, int sealing) {
    auto* state = state_of(ssl);
    if (state == nullptr) {
        return 0;
    }
    const auto now = TicketKeys::Clock::now();
    const std::span<unsigned char, TicketKeys::kNameSize> key_name(name, TicketKeys::kNameSize);
    return sealing == 1 ? state->keys.seal(key_name, iv, cipher, mac, now)
                        : state->keys.open(key_name, iv, cipher, mac, now);
}

// Runs once a ticket was opened (or could not be): a session is taken up
// again only when its client would pass the handshake now; otherwise the
// handshake goes on in full, where the verify callback refuses the client
// with its alert.
SSL_TICKET_RETURN on_ticket_opened(SSL* ssl, SSL_SESSION* session, const unsigned char* /*name*/,
                                   std::size_t /*name_size*/, SSL_TICKET_STATUS status,
                                   void* /*arg*/) {
    switch (status) {
        case SSL_TICKET_FATAL_ERR_MALLOC:
        case SSL_TICKET_FATAL_ERR_OTHER:
            return SSL_TICKET_RETURN_ABORT;
        case SSL_TICKET_SUCCESS:
        case SSL_TICKET_SUCCESS_RENEW: {
            const auto* state = state_of(ssl);
            X509_STORE* store = SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl));
            if (state != nullptr && session != nullptr &&
                still_allowed(store, SSL_SESSION_get0_peer(session), state->clients)) {
                return status == SSL_TICKET_SUCCESS ? SSL_TICKET_RETURN_USE
                                                    : SSL_TICKET_RETURN_USE_RENEW;
            }
            return SSL_TICKET_RETURN_IGNORE_RENEW;
        }
        default:  // no ticket, or one no key opens
            return SSL_TICKET_RETURN_IGNORE_RENEW;
    }
}

}  // namespace

void enable_session_tickets(SSL_CTX* ctx, std::chrono::seconds lifetime,
                            std::vector<AllowedClient> clients) {
    const int index = state_index();
    auto state = std::make_unique<TicketState>(lifetime, std::move(clients));
    if (index < 0 || SSL_CTX_set_ex_data(ctx, index, state.get()) != 1) {
        throw std::runtime_error("TLS: session ticket state could not be attached");
    }
    state.release();  // the context's ex_data frees it now
    SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_timeout(ctx, static_cast<long>(lifetime.count()));
    if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket_key) != 1 ||
        SSL_CTX_set_session_ticket_cb(ctx, nullptr, on_ticket_opened, nullptr) != 1 ||
        SSL_CTX_set_num_tickets(ctx, kTicketsPerHandshake) != 1) {
        throw std::runtime_error("TLS: session tickets could not be set up");
    }
}

}  // namespace otpbox::api
