// AES-256-GCM seal and open of a phone number through the hsm layer against
// the same PKCS#11 calls made directly on the same SoftHSM2 token and key,
// with 1 and 2 threads, measured in one run. Prints the layer's rate as a
// ratio of the raw rate (target: at least 0.90).
//
// The layer draws every IV from the token (C_GenerateRandom, then
// C_EncryptInit/C_Encrypt, C_DecryptInit/C_Decrypt), so the reference does
// the same calls. A second reference without the IV draw shows what the
// draw costs.

#include <array>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string_view>
#include <vector>

#include "bench_token.hpp"
#include "otpbox/hsm/hsm.hpp"
#include "raw_token.hpp"
#include "rounds.hpp"

namespace {

using namespace otpbox::bench;

constexpr const char* kLabel = "bench-data-enc-v1";
constexpr std::string_view kPhone = "+491701234567";
constexpr std::string_view kAad = "phone:bench-user";
constexpr std::size_t kIvBytes = 12;
constexpr std::size_t kTagBytes = 16;

std::span<const std::uint8_t> bytes_of(std::string_view text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

struct LayerWork {
    otpbox::hsm::Hsm& hsm;

    int prepare(unsigned) { return 0; }

    void run(int&) const {
        const auto sealed = hsm.aes_gcm_encrypt(kLabel, bytes_of(kPhone), bytes_of(kAad));
        if (!hsm.aes_gcm_decrypt(kLabel, sealed, bytes_of(kAad))) {
            std::fprintf(stderr, "bench: the layer could not open what it sealed\n");
            std::exit(1);
        }
    }
};

// The same seal and open on the module directly: a session per thread, the
// key looked up once.
struct RawWork {
    const RawToken& token;
    bool draw_iv;

    struct State {
        RawSession session;
        CK_OBJECT_HANDLE key;
        std::array<CK_BYTE, kIvBytes> iv{};
        std::vector<CK_BYTE> plain = std::vector<CK_BYTE>(kPhone.begin(), kPhone.end());
        std::vector<CK_BYTE> aad = std::vector<CK_BYTE>(kAad.begin(), kAad.end());
        std::vector<CK_BYTE> sealed = std::vector<CK_BYTE>(kPhone.size() + kTagBytes);
        std::vector<CK_BYTE> opened = std::vector<CK_BYTE>(kPhone.size() + kTagBytes);
    };

    State prepare(unsigned) const {
        auto session = token.open_session();
        const auto key = session.find_key(kLabel);
        return State{std::move(session), key};
    }

    // Without the draw the IV stays fixed: harmless under a throw-away key.
    void run(State& state) const {
        auto& fn = token.fn();
        const auto session = state.session.handle();
        if (draw_iv) {
            check(fn.C_GenerateRandom(session, state.iv.data(), state.iv.size()),
                  "C_GenerateRandom");
        }
        CK_GCM_PARAMS params{};
        params.pIv = state.iv.data();
        params.ulIvLen = state.iv.size();
        params.ulIvBits = state.iv.size() * 8;
        params.pAAD = state.aad.data();
        params.ulAADLen = state.aad.size();
        params.ulTagBits = kTagBytes * 8;
        CK_MECHANISM mechanism{CKM_AES_GCM, &params, sizeof(params)};

        CK_ULONG sealed_length = state.sealed.size();
        check(fn.C_EncryptInit(session, &mechanism, state.key), "C_EncryptInit");
        check(fn.C_Encrypt(session, state.plain.data(), state.plain.size(), state.sealed.data(),
                           &sealed_length),
              "C_Encrypt");
        CK_ULONG opened_length = state.opened.size();
        check(fn.C_DecryptInit(session, &mechanism, state.key), "C_DecryptInit");
        check(fn.C_Decrypt(session, state.sealed.data(), sealed_length, state.opened.data(),
                           &opened_length),
              "C_Decrypt");
    }
};

}  // namespace

int main() {
    BenchToken token;
    auto hsm = otpbox::hsm::Hsm::open(token.hsm_config());
    hsm->generate_secret_key(kLabel, otpbox::hsm::KeyKind::aes_256);
    const RawToken raw_token(kSoftHsmModule, kTokenLabel);

    std::printf("%-30s %12s %12s %12s %8s %10s\n", "AES-GCM seal+open, 13 bytes", "raw op/s",
                "layer op/s", "no-draw op/s", "ratio", "vs no-draw");
    for (const unsigned threads : {1u, 2u}) {
        RawWork raw{raw_token, true};
        RawWork raw_fixed_iv{raw_token, false};
        LayerWork layer{*hsm};
        const auto measured = measure(threads, raw, layer, raw_fixed_iv);
        std::printf("%u thread%-22s %12.0f %12.0f %12.0f %8.2f %10.2f  (target >= 0.90)\n", threads,
                    threads == 1 ? "" : "s", measured.rate(0), measured.rate(1), measured.rate(2),
                    measured.ratio(1, 0), measured.ratio(1, 2));
    }
    return 0;
}
