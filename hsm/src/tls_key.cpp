#include "otpbox/hsm/tls_key.hpp"

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/x509.h>

#include <atomic>
#include <chrono>

#include "bounded_wait.hpp"
#include "otpbox/hsm/error.hpp"

// OpenSSL 3 signs with a key held elsewhere either through a provider or
// through the EC_KEY_METHOD of 1.1, deprecated but supported: a key with
// its own method is "foreign" and keeps the legacy signing path. The
// method is the smaller of the two; only its calls are exempt here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace otpbox::hsm {

namespace {

constexpr std::size_t kP256ScalarBytes = 32;

struct KeyContext {
    std::shared_ptr<Hsm> hsm;
    std::string label;
    std::chrono::milliseconds deadline;
    // After a signature overran, handshakes fail at once for a second
    // rather than each holding its thread for the deadline.
    std::atomic<std::chrono::steady_clock::rep> refuse_until{0};
};

constexpr auto kRefuseAfterOverrun = std::chrono::seconds(1);

// What a signature left to its own thread needs and makes.
struct Signing {
    std::shared_ptr<Hsm> hsm;
    std::string label;
    std::vector<std::uint8_t> digest;
    std::vector<std::uint8_t> raw;
};

void free_context(void* /*parent*/, void* pointer, CRYPTO_EX_DATA* /*data*/, int /*index*/,
                  long /*argl*/, void* /*argp*/) {
    delete static_cast<KeyContext*>(pointer);
}

int context_index() {
    static const int index = EC_KEY_get_ex_new_index(0, nullptr, nullptr, nullptr, free_context);
    return index;
}

// Called by OpenSSL: an error is reported as a null signature, never thrown.
ECDSA_SIG* sign_digest(const unsigned char* digest, int digest_length, const BIGNUM* /*kinv*/,
                       const BIGNUM* /*r*/, EC_KEY* key) {
    auto* context = static_cast<KeyContext*>(EC_KEY_get_ex_data(key, context_index()));
    if (context == nullptr || digest_length < 0) {
        return nullptr;
    }
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    if (now < context->refuse_until.load()) {
        return nullptr;
    }
    try {
        auto signing = std::make_shared<Signing>();
        signing->hsm = context->hsm;
        signing->label = context->label;
        signing->digest.assign(digest, digest + digest_length);
        // Whatever the HSM does, the handshake's thread waits no longer than
        // the deadline; an overrun fails this handshake only.
        const bool signed_in_time = run_within(
            [signing] {
                signing->raw = signing->hsm->sign_with_private_key(signing->label, signing->digest);
            },
            context->deadline);
        if (!signed_in_time) {
            context->refuse_until.store((std::chrono::steady_clock::now() + kRefuseAfterOverrun)
                                            .time_since_epoch()
                                            .count());
            return nullptr;
        }
        const auto& raw = signing->raw;
        if (raw.size() != 2 * kP256ScalarBytes) {
            return nullptr;
        }
        BIGNUM* r = BN_bin2bn(raw.data(), kP256ScalarBytes, nullptr);
        BIGNUM* s = BN_bin2bn(raw.data() + kP256ScalarBytes, kP256ScalarBytes, nullptr);
        ECDSA_SIG* signature = ECDSA_SIG_new();
        if (r == nullptr || s == nullptr || signature == nullptr ||
            ECDSA_SIG_set0(signature, r, s) != 1) {
            BN_free(r);
            BN_free(s);
            ECDSA_SIG_free(signature);
            return nullptr;
        }
        return signature;
    } catch (const std::exception&) {
        return nullptr;
    }
}

int sign_der(int /*type*/, const unsigned char* digest, int digest_length, unsigned char* out,
             unsigned int* out_length, const BIGNUM* kinv, const BIGNUM* r, EC_KEY* key) {
    ECDSA_SIG* signature = sign_digest(digest, digest_length, kinv, r, key);
    if (signature == nullptr) {
        return 0;
    }
    unsigned char* cursor = out;
    const int length = i2d_ECDSA_SIG(signature, &cursor);
    ECDSA_SIG_free(signature);
    if (length <= 0) {
        return 0;
    }
    *out_length = static_cast<unsigned int>(length);
    return 1;
}

const EC_KEY_METHOD* hsm_method() {
    static EC_KEY_METHOD* const method = [] {
        EC_KEY_METHOD* made = EC_KEY_METHOD_new(EC_KEY_get_default_method());
        int (*setup)(EC_KEY*, BN_CTX*, BIGNUM**, BIGNUM**) = nullptr;
        EC_KEY_METHOD_get_sign(EC_KEY_get_default_method(), nullptr, &setup, nullptr);
        EC_KEY_METHOD_set_sign(made, sign_der, setup, sign_digest);
        return made;
    }();
    return method;
}

EC_KEY* public_ec_key(std::span<const std::uint8_t> der) {
    const unsigned char* cursor = der.data();
    EvpPkeyPtr parsed(d2i_PUBKEY(nullptr, &cursor, static_cast<long>(der.size())));
    EC_KEY* key = parsed ? EVP_PKEY_get1_EC_KEY(parsed.get()) : nullptr;
    if (key == nullptr) {
        throw HsmError(Fault::data, "the key pair is not an EC P-256 pair");
    }
    return key;
}

}  // namespace

EvpPkeyPtr hsm_private_key(std::shared_ptr<Hsm> hsm, std::string_view label,
                           std::chrono::milliseconds deadline) {
    EC_KEY* key = public_ec_key(hsm->public_key_der(label));
    auto* context = new KeyContext{std::move(hsm), std::string(label), deadline, {}};
    EvpPkeyPtr pkey(EVP_PKEY_new());
    if (EC_KEY_set_ex_data(key, context_index(), context) != 1) {
        delete context;
        EC_KEY_free(key);
        throw HsmError(Fault::other, "cannot attach the HSM to the key");
    }
    if (!pkey || EC_KEY_set_method(key, hsm_method()) != 1 ||
        EVP_PKEY_assign_EC_KEY(pkey.get(), key) != 1) {
        EC_KEY_free(key);
        throw HsmError(Fault::other, "cannot make an OpenSSL key for the HSM key");
    }
    return pkey;
}

}  // namespace otpbox::hsm

#pragma GCC diagnostic pop
