#include "public_key.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include <memory>

#include "otpbox/hsm/error.hpp"

namespace otpbox::hsm {

namespace {

constexpr std::size_t kP256PointBytes = 65;

struct Free {
    void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
    void operator()(EVP_PKEY_CTX* ctx) const { EVP_PKEY_CTX_free(ctx); }
    void operator()(OSSL_PARAM_BLD* builder) const { OSSL_PARAM_BLD_free(builder); }
    void operator()(OSSL_PARAM* params) const { OSSL_PARAM_free(params); }
    void operator()(BIGNUM* number) const { BN_free(number); }
};

template <class T>
using Owned = std::unique_ptr<T, Free>;

std::vector<std::uint8_t> der_from_params(const char* type, OSSL_PARAM_BLD* builder) {
    const Owned<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(builder));
    const Owned<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
    EVP_PKEY* raw = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
        EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) <= 0) {
        throw HsmError(Fault::other, "the token's public key cannot be read");
    }
    const Owned<EVP_PKEY> key(raw);
    const int length = i2d_PUBKEY(key.get(), nullptr);
    std::vector<std::uint8_t> der(static_cast<std::size_t>(length > 0 ? length : 0));
    unsigned char* out = der.data();
    if (length <= 0 || i2d_PUBKEY(key.get(), &out) != length) {
        throw HsmError(Fault::other, "the token's public key cannot be encoded");
    }
    return der;
}

}  // namespace

std::vector<std::uint8_t> p256_public_key_der(std::span<const std::uint8_t> ec_point) {
    if (ec_point.size() == kP256PointBytes + 2 && ec_point[0] == 0x04 &&
        ec_point[1] == kP256PointBytes) {
        ec_point = ec_point.subspan(2);
    }
    const Owned<OSSL_PARAM_BLD> builder(OSSL_PARAM_BLD_new());
    if (!builder ||
        !OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1",
                                         0) ||
        !OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, ec_point.data(),
                                          ec_point.size())) {
        throw HsmError(Fault::other, "out of memory building a public key");
    }
    return der_from_params("EC", builder.get());
}

std::vector<std::uint8_t> rsa_public_key_der(std::span<const std::uint8_t> modulus,
                                             std::span<const std::uint8_t> exponent) {
    const Owned<BIGNUM> n(BN_bin2bn(modulus.data(), static_cast<int>(modulus.size()), nullptr));
    const Owned<BIGNUM> e(BN_bin2bn(exponent.data(), static_cast<int>(exponent.size()), nullptr));
    const Owned<OSSL_PARAM_BLD> builder(OSSL_PARAM_BLD_new());
    if (!n || !e || !builder ||
        !OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) ||
        !OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_E, e.get())) {
        throw HsmError(Fault::other, "out of memory building a public key");
    }
    return der_from_params("RSA", builder.get());
}

}  // namespace otpbox::hsm
