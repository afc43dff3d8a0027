#include "bench_token.hpp"

#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace otpbox::bench {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPin = "123456";
constexpr const char* kSoPin = "12345678";

[[nodiscard]] fs::path make_temporary_dir() {
    std::string pattern = (fs::temp_directory_path() / "otpbox-bench-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
        std::perror("bench: mkdtemp");
        std::exit(1);
    }
    return pattern;
}

}  // namespace

BenchToken::BenchToken() : m_dir(make_temporary_dir()) {
    fs::create_directories(m_dir / "tokens");
    std::ofstream(m_dir / "softhsm2.conf")
        << "directories.tokendir = " << (m_dir / "tokens").string() << "\nlog.level = ERROR\n";
    std::ofstream(m_dir / "user.pin") << kPin << "\n";
    // The layer refuses a PIN file that others may read.
    fs::permissions(m_dir / "user.pin", fs::perms::owner_read | fs::perms::owner_write);

    const std::string command = "SOFTHSM2_CONF='" + (m_dir / "softhsm2.conf").string() +
                                "' softhsm2-util --init-token --free --label " + kTokenLabel +
                                " --so-pin " + kSoPin + " --pin " + kPin + " >/dev/null";
    if (std::system(command.c_str()) != 0) {
        std::fprintf(stderr, "bench: softhsm2-util could not make the token\n");
        std::exit(1);
    }
}

BenchToken::~BenchToken() {
    std::error_code ignored;
    fs::remove_all(m_dir, ignored);
}

hsm::HsmConfig BenchToken::hsm_config() const {
    hsm::HsmConfig config;
    config.module_path = kSoftHsmModule;
    config.token_label = kTokenLabel;
    config.pin_file = m_dir / "user.pin";
    config.environment = {{"SOFTHSM2_CONF", (m_dir / "softhsm2.conf").string()}};
    return config;
}

}  // namespace otpbox::bench
