// HMAC-SHA256 operations per second through the hsm layer against a plain
// loop of C_SignInit/C_Sign on the same SoftHSM2 token, with 1 and 2
// threads, measured in one run. Prints the layer's rate as a ratio of the
// raw rate (target: at least 0.90).

#include <dlfcn.h>
#include <p11-kit/pkcs11.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "otpbox/hsm/hsm.hpp"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr auto kRound = std::chrono::seconds(2);
constexpr const char* kModule = "/usr/lib/softhsm/libsofthsm2.so";
constexpr const char* kPin = "123456";
constexpr const char* kLabel = "bench-mac-v1";

fs::path make_token() {
    std::string pattern = (fs::temp_directory_path() / "otpbox-bench-XXXXXX").string();
    const fs::path dir = ::mkdtemp(pattern.data());
    fs::create_directories(dir / "tokens");
    std::ofstream(dir / "softhsm2.conf")
        << "directories.tokendir = " << (dir / "tokens").string() << "\nlog.level = ERROR\n";
    std::ofstream(dir / "user.pin") << kPin << "\n";
    fs::permissions(dir / "user.pin", fs::perms::owner_read | fs::perms::owner_write);
    ::setenv("SOFTHSM2_CONF", (dir / "softhsm2.conf").c_str(), 1);
    const std::string command = std::string("softhsm2-util --init-token --free --label bench ") +
                                "--so-pin 12345678 --pin " + kPin + " >/dev/null";
    if (std::system(command.c_str()) != 0) {
        std::fprintf(stderr, "softhsm2-util failed\n");
        std::exit(1);
    }
    return dir;
}

// Runs work on threads for one round; returns operations per second.
template <class Work>
double rate(unsigned threads, Work work) {
    std::atomic<long> count{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> workers;
    const auto start = Clock::now();
    for (unsigned t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            long done = 0;
            auto state = work.prepare(t);
            while (!stop.load(std::memory_order_relaxed)) {
                work.run(state);
                ++done;
            }
            count += done;
        });
    }
    std::this_thread::sleep_for(kRound);
    stop = true;
    for (auto& worker : workers) {
        worker.join();
    }
    const std::chrono::duration<double> took = Clock::now() - start;
    return static_cast<double>(count.load()) / took.count();
}

struct LayerWork {
    otpbox::hsm::Hsm& hsm;
    std::vector<std::uint8_t> data = std::vector<std::uint8_t>(64, 0x5a);
    int prepare(unsigned) { return 0; }
    void run(int&) { (void)hsm.hmac_sha256(kLabel, data); }
};

// The same operation on the module directly: a session per thread, the key
// looked up once.
struct RawWork {
    CK_FUNCTION_LIST* fn;
    CK_SLOT_ID slot;
    std::vector<std::uint8_t> data = std::vector<std::uint8_t>(64, 0x5a);

    struct State {
        CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
        CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    };

    State prepare(unsigned) {
        State state;
        fn->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &state.session);
        CK_ATTRIBUTE query[] = {{CKA_LABEL, const_cast<char*>(kLabel), std::strlen(kLabel)}};
        CK_ULONG found = 0;
        fn->C_FindObjectsInit(state.session, query, 1);
        fn->C_FindObjects(state.session, &state.key, 1, &found);
        fn->C_FindObjectsFinal(state.session);
        return state;
    }

    void run(State& state) {
        CK_MECHANISM mechanism{CKM_SHA256_HMAC, nullptr, 0};
        CK_BYTE mac[32];
        CK_ULONG length = sizeof(mac);
        fn->C_SignInit(state.session, &mechanism, state.key);
        fn->C_Sign(state.session, data.data(), data.size(), mac, &length);
    }
};

}  // namespace

int main() {
    const auto dir = make_token();
    otpbox::hsm::HsmConfig config;
    config.module_path = kModule;
    config.token_label = "bench";
    config.pin_file = dir / "user.pin";
    auto hsm = otpbox::hsm::Hsm::open(config);
    hsm->generate_secret_key(kLabel, otpbox::hsm::KeyKind::hmac_sha256);

    // The layer already initialised the module in this process: the raw
    // loop uses the same module through its own function list, and the
    // login the layer holds (logins belong to the application).
    void* handle = ::dlopen(kModule, RTLD_NOW | RTLD_NOLOAD);
    auto get_list =
        reinterpret_cast<CK_RV (*)(CK_FUNCTION_LIST_PTR_PTR)>(::dlsym(handle, "C_GetFunctionList"));
    CK_FUNCTION_LIST* fn = nullptr;
    get_list(&fn);
    CK_SLOT_ID slots[16];
    CK_ULONG count = 16;
    fn->C_GetSlotList(CK_TRUE, slots, &count);
    CK_SLOT_ID slot = slots[0];
    for (CK_ULONG i = 0; i < count; ++i) {
        CK_TOKEN_INFO info{};
        fn->C_GetTokenInfo(slots[i], &info);
        if (std::string(reinterpret_cast<char*>(info.label), 5) == "bench") {
            slot = slots[i];
        }
    }

    std::printf("%-28s %12s %12s %8s\n", "HMAC-SHA256, 64 bytes", "raw op/s", "layer op/s",
                "ratio");
    for (const unsigned threads : {1u, 2u}) {
        const double raw = rate(threads, RawWork{fn, slot});
        const double layer = rate(threads, LayerWork{*hsm});
        std::printf("%u thread%-20s %12.0f %12.0f %8.2f  (target >= 0.90)\n", threads,
                    threads == 1 ? "" : "s", raw, layer, layer / raw);
    }
    hsm.reset();
    fs::remove_all(dir);
    return 0;
}
