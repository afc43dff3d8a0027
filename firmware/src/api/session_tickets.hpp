#pragma once

// TLS session tickets (RFC 5077 for TLS 1.2, RFC 8446 4.6.1 for TLS 1.3),
// sealed with keys that rotate, and a resumption that checks the client's
// certificate again against the running settings.

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "otpbox/firmware/api/server.hpp"

namespace otpbox::api {

// The keys that seal tickets, kept in memory only. A key seals new tickets
// for one lifetime and then opens the tickets it sealed for one more, so no
// key lives longer than twice the tickets' lifetime (RFC 7525 3.4 asks for
// tickets valid half as long as their key). Retired keys are wiped. Safe to
// call from several threads.
class TicketKeys {
  public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::size_t kNameSize = 16;  // OpenSSL's ticket key name

    explicit TicketKeys(std::chrono::seconds lifetime);
    ~TicketKeys();
    TicketKeys(const TicketKeys&) = delete;
    TicketKeys& operator=(const TicketKeys&) = delete;

    // As the callback of SSL_CTX_set_tlsext_ticket_key_evp_cb when sealing:
    // writes the current key's name and a fresh IV, readies AES-256-CBC and
    // HMAC-SHA256. 1 when ready, 0 (no ticket) when no key could be made.
    int seal(std::span<unsigned char, kNameSize> name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
             EVP_MAC_CTX* mac, Clock::time_point now);
    // The same when opening a ticket under that name: 1 for the current key,
    // 2 for the previous one (OpenSSL then issues a ticket under the current
    // key), 0 for a name no key has any more (a full handshake follows).
    int open(std::span<const unsigned char, kNameSize> name, const unsigned char* iv,
             EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, Clock::time_point now);

  private:
    struct Key;
    struct Wipe {
        void operator()(Key* key) const;
    };
    using KeyPtr = std::unique_ptr<Key, Wipe>;

    void rotate(Clock::time_point now);
    [[nodiscard]] static KeyPtr make_key(Clock::time_point now);
    [[nodiscard]] static bool ready(const Key& key, const unsigned char* iv, EVP_CIPHER_CTX* cipher,
                                    EVP_MAC_CTX* mac, bool sealing);

    const std::chrono::seconds m_lifetime;
    std::mutex m_mutex;
    KeyPtr m_current;
    KeyPtr m_previous;
};

// Whether a resumed session's client would pass the handshake now: its
// certificate verifies against `store` (the CA, the CRL, its validity at this
// moment) and its subject is on `clients`. Without its chain, a certificate
// issued by an intermediate CA fails here and the client makes a full
// handshake instead.
[[nodiscard]] bool still_allowed(X509_STORE* store, X509* leaf,
                                 std::span<const AllowedClient> clients);

// Turns tickets on for the context: one ticket after each full handshake,
// valid for `lifetime`, sealed by a TicketKeys of its own, and a resumption
// only while still_allowed() holds for its certificate against the context's
// store. A new context (a reload) starts with new keys, so no ticket sealed
// under the settings before it is opened. Throws std::runtime_error.
void enable_session_tickets(SSL_CTX* ctx, std::chrono::seconds lifetime,
                            std::vector<AllowedClient> clients);

}  // namespace otpbox::api
