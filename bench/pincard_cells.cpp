// The HSM work of a PINCard verification inside the library: the three
// cells a challenge names, derived with firmware::Secrets::card_cell,
// against three HMAC-SHA256 (C_SignInit/C_Sign) of the same inputs made
// directly on the same SoftHSM2 token and key, with 1 and 2 threads,
// measured in one run. Prints the library's rate as a ratio of the raw
// rate (target: at least 0.90, as for the hsm layer alone).

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_token.hpp"
#include "otpbox/firmware/secrets.hpp"
#include "otpbox/hsm/key_labels.hpp"
#include "raw_token.hpp"
#include "rounds.hpp"

namespace {

using namespace otpbox::bench;
using otpbox::firmware::CardLayout;
using otpbox::firmware::Secrets;

constexpr const char* kSerial = "K7Q2M9X4P1ZR";
constexpr std::array<const char*, 3> kCells{"B3", "E7", "H1"};

const std::string& card_key() {
    static const std::string label =
        otpbox::hsm::keys::versioned(otpbox::hsm::keys::kCardKdk, Secrets::kKeyVersion);
    return label;
}

// The HMAC input of a cell's first draw, as Secrets::card_cell builds it;
// with 2 digits a cell needs a second draw only when 30 of its 32 bytes
// are rejected, which the reference ignores.
std::string cell_input(const char* cell) {
    return std::string("otpbox-card|") + kSerial + "|" + std::to_string(Secrets::kKeyVersion) +
           "|" + cell + "|0";
}

struct LibraryWork {
    Secrets& secrets;
    CardLayout layout;

    int prepare(unsigned) { return 0; }

    void run(int&) const {
        for (const auto* cell : kCells) {
            (void)secrets.card_cell(kSerial, Secrets::kKeyVersion, cell, layout);
        }
    }
};

struct RawWork {
    const RawToken& token;

    struct State {
        RawSession session;
        CK_OBJECT_HANDLE key;
        std::vector<std::string> inputs;
    };

    State prepare(unsigned) const {
        auto session = token.open_session();
        const auto key = session.find_key(card_key());
        std::vector<std::string> inputs;
        for (const auto* cell : kCells) {
            inputs.push_back(cell_input(cell));
        }
        return State{std::move(session), key, std::move(inputs)};
    }

    std::array<CK_BYTE, 32> mac(State& state, std::string& input) const {
        CK_MECHANISM mechanism{CKM_SHA256_HMAC, nullptr, 0};
        std::array<CK_BYTE, 32> mac{};
        CK_ULONG length = mac.size();
        auto& fn = token.fn();
        check(fn.C_SignInit(state.session.handle(), &mechanism, state.key), "C_SignInit");
        check(fn.C_Sign(state.session.handle(), reinterpret_cast<CK_BYTE*>(input.data()),
                        input.size(), mac.data(), &length),
              "C_Sign");
        return mac;
    }

    void run(State& state) const {
        for (auto& input : state.inputs) {
            (void)mac(state, input);
        }
    }
};

// The cell value card_cell maps the MAC to: digits by rejection above 249.
std::string digits_of(const std::array<CK_BYTE, 32>& mac, unsigned length) {
    std::string value;
    for (const auto byte : mac) {
        if (value.size() == length) {
            break;
        }
        if (byte < 250) {
            value += static_cast<char>('0' + byte % 10);
        }
    }
    return value;
}

// Stops the run when the reference no longer computes what the library
// does: it would then measure other work.
void require_same_work(Secrets& secrets, const CardLayout& layout, const RawWork& raw) {
    auto state = raw.prepare(0);
    for (std::size_t index = 0; index < kCells.size(); ++index) {
        const auto expected =
            secrets.card_cell(kSerial, Secrets::kKeyVersion, kCells[index], layout);
        const auto computed = digits_of(raw.mac(state, state.inputs[index]), layout.cell_length);
        if (computed != expected) {
            std::fprintf(stderr,
                         "bench: the raw reference no longer derives the card's cells; "
                         "follow Secrets::card_cell in %s\n",
                         __FILE__);
            std::exit(1);
        }
    }
}

}  // namespace

int main() {
    BenchToken token;
    auto hsm = otpbox::hsm::Hsm::open(token.hsm_config());
    hsm->generate_secret_key(card_key(), otpbox::hsm::KeyKind::hmac_sha256);
    Secrets secrets(hsm);
    const RawToken raw_token(kSoftHsmModule, kTokenLabel);
    const CardLayout layout;
    require_same_work(secrets, layout, RawWork{raw_token});

    std::printf("%-30s %12s %12s %8s\n", "3 PINCard cells (3 HMACs)", "raw op/s", "library op/s",
                "ratio");
    for (const unsigned threads : {1u, 2u}) {
        RawWork raw{raw_token};
        LibraryWork library{secrets, layout};
        const auto measured = measure(threads, raw, library);
        std::printf("%u thread%-22s %12.0f %12.0f %8.2f  (target >= 0.90)\n", threads,
                    threads == 1 ? "" : "s", measured.rate(0), measured.rate(1),
                    measured.ratio(1, 0));
    }
    return 0;
}
