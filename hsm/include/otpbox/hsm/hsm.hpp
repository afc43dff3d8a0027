#pragma once

// The HSM as the rest of otpbox sees it: one object per process that owns
// the PKCS#11 module, keeps the login, and offers the few operations the
// appliance needs, each by key label. Every method may throw HsmError.

#include <p11-kit/pkcs11.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "otpbox/hsm/secure_bytes.hpp"

namespace otpbox::hsm {

struct HsmConfig {
    std::filesystem::path module_path;
    std::string token_label;
    std::filesystem::path pin_file;
    // Set with setenv() before the module is loaded (SOFTHSM2_CONF, ...).
    std::map<std::string, std::string> environment;
    std::chrono::milliseconds call_timeout{5000};
    std::size_t max_sessions = 8;
};

enum class KeyKind { hmac_sha256, aes_256, ec_p256, rsa_3072 };

struct KeyInfo {
    std::string label;
    KeyKind kind = KeyKind::hmac_sha256;
    std::vector<std::uint8_t> id;
    bool sensitive = true;
    bool extractable = false;
};

struct HsmHealth {
    bool ok = false;
    std::string state;   // "ok", "stalled", "token_gone", "not_logged_in", ...
    std::string detail;  // one line for an operator, never a secret
};

// Reads a PIN file. Throws HsmError(Fault::config) when the file cannot be
// read, is empty, or when its group or others may read or write it.
[[nodiscard]] SecureBytes read_pin_file(const std::filesystem::path& path);

using OverrunListener = std::function<void(std::thread::id)>;

class Hsm {
  public:
    // Loads the module, finds the token by label, logs in with the PIN file.
    // Throws HsmError with a one-line message naming the problem.
    [[nodiscard]] static std::shared_ptr<Hsm> open(const HsmConfig& config);

    // Destroying the Hsm closes the token's sessions. That must not happen
    // while another thread is in one of its methods, a call waiting in the
    // module or a look for a lost token included: nothing waits for them.
    // Every thread that calls the Hsm holds a shared_ptr to it for the
    // length of the call (as otpboxd's tasks and the TLS key's signatures
    // do), so that the last reference goes only once every call has returned.
    virtual ~Hsm() = default;

    [[nodiscard]] virtual std::vector<std::uint8_t> random_bytes(std::size_t count) = 0;

    [[nodiscard]] virtual std::vector<std::uint8_t> hmac_sha256(
        std::string_view key_label, std::span<const std::uint8_t> data) = 0;

    // Constant-time comparison of the HMAC of data with mac.
    [[nodiscard]] virtual bool hmac_sha256_verify(std::string_view key_label,
                                                  std::span<const std::uint8_t> data,
                                                  std::span<const std::uint8_t> mac) = 0;

    // AES-256-GCM with a fresh 96-bit IV; returns IV (12) || ciphertext || tag (16).
    // The associated data must not be empty (the record's id).
    [[nodiscard]] virtual std::vector<std::uint8_t> aes_gcm_encrypt(
        std::string_view key_label, std::span<const std::uint8_t> plaintext,
        std::span<const std::uint8_t> associated_data) = 0;

    // nullopt when the tag does not verify (wrong key, data or AAD).
    [[nodiscard]] virtual std::optional<SecureBytes> aes_gcm_decrypt(
        std::string_view key_label, std::span<const std::uint8_t> sealed,
        std::span<const std::uint8_t> associated_data) = 0;

    [[nodiscard]] virtual bool has_key(std::string_view label) = 0;
    [[nodiscard]] virtual std::vector<KeyInfo> list_keys() = 0;

    // Generates a secret key inside the token: CKA_TOKEN, CKA_PRIVATE,
    // CKA_SENSITIVE true, CKA_EXTRACTABLE false, only the usage it needs.
    // Throws when a key of that label exists already.
    virtual void generate_secret_key(std::string_view label, KeyKind kind) = 0;

    // Imports a secret key value with the same attributes as a generated
    // one. Only for known-answer tests: the appliance never imports keys.
    virtual void import_secret_key(std::string_view label, KeyKind kind,
                                   std::span<const std::uint8_t> value) = 0;

    // The TLS identity (otpbox/hsm/tls_key.hpp builds on these). A key
    // pair made inside the token: the private key sensitive, not
    // extractable, for signing only; private and public key share the
    // label and one CKA_ID. Throws when a key of that label exists already.
    virtual void generate_key_pair(std::string_view label, KeyKind kind);

    // The public key of the pair as DER SubjectPublicKeyInfo.
    [[nodiscard]] virtual std::vector<std::uint8_t> public_key_der(std::string_view label);

    // Signs with the private key of the pair. ec_p256: ECDSA over a digest,
    // the signature as r || s (32 bytes each). rsa_3072: PKCS #1 v1.5 over
    // a DER DigestInfo.
    [[nodiscard]] virtual std::vector<std::uint8_t> sign_with_private_key(
        std::string_view label, std::span<const std::uint8_t> input);

    // Keeps the pair's X.509 certificate (DER) in the token as a certificate
    // object with the pair's label and CKA_ID, public and unchangeable,
    // replacing the one stored before. Throws HsmError(Fault::data) when der
    // is no certificate or not for this pair's public key.
    virtual void store_certificate(std::string_view label, std::span<const std::uint8_t> der);

    // The certificate stored with the pair, nullopt when there is none.
    [[nodiscard]] virtual std::optional<std::vector<std::uint8_t>> stored_certificate(
        std::string_view label);

    // What the token offers (C_GetMechanismList), so that a caller can tell
    // a token that lacks a mechanism from one that fails at it.
    [[nodiscard]] virtual std::vector<CK_MECHANISM_TYPE> mechanisms();

    // Looks for a lost token now, at most once a second: finds it by label,
    // logs in and opens a session, waiting as long as the module keeps those
    // calls. Throws HsmError(Fault::pin) when the token refuses the PIN, or
    // refused it on an earlier reconnect (whoever's call met it then: the
    // PIN is not tried again); any other failure leaves the state
    // last_health() reports. Does nothing while the token is not lost or
    // calls overrun. By default nothing.
    virtual void look_for_token();

    // How the HSM was last seen, without a call to the module: never waits
    // for it, also while another thread looks for a lost token.
    [[nodiscard]] virtual HsmHealth last_health() = 0;

    // look_for_token(), a refused PIN counting as any other failure, then
    // last_health(): may wait in the module.
    [[nodiscard]] virtual HsmHealth health() = 0;

    // Told, on the layer's watcher thread, the thread that waits in a call
    // which has just overrun call_timeout: a server can answer that thread's
    // request at once instead of waiting for the call. It must not block or
    // call the Hsm. Once set_overrun_listener returns, the listener it
    // replaced is no longer running. By default nothing is told.
    virtual void set_overrun_listener(OverrunListener listener);
};

}  // namespace otpbox::hsm
