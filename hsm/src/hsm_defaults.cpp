#include "otpbox/hsm/error.hpp"
#include "otpbox/hsm/hsm.hpp"

// Not pure, so that test doubles of Hsm need not implement the TLS key.

namespace otpbox::hsm {

void Hsm::generate_key_pair(std::string_view /*label*/, KeyKind /*kind*/) {
    throw HsmError(Fault::other, "this HSM cannot make key pairs");
}

std::vector<std::uint8_t> Hsm::public_key_der(std::string_view /*label*/) {
    throw HsmError(Fault::other, "this HSM holds no key pairs");
}

std::vector<std::uint8_t> Hsm::sign_with_private_key(std::string_view /*label*/,
                                                     std::span<const std::uint8_t> /*input*/) {
    throw HsmError(Fault::other, "this HSM holds no key pairs");
}

void Hsm::store_certificate(std::string_view /*label*/, std::span<const std::uint8_t> /*der*/) {
    throw HsmError(Fault::other, "this HSM holds no certificates");
}

std::optional<std::vector<std::uint8_t>> Hsm::stored_certificate(std::string_view /*label*/) {
    return std::nullopt;
}

std::vector<CK_MECHANISM_TYPE> Hsm::mechanisms() {
    throw HsmError(Fault::other, "this HSM cannot list its mechanisms");
}

void Hsm::set_overrun_listener(OverrunListener /*listener*/) {}

void Hsm::look_for_token() {}

}  // namespace otpbox::hsm
