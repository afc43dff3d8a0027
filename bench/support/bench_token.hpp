#pragma once

// A throw-away SoftHSM2 token for one benchmark run, in a temporary folder
// that also holds whatever else the run writes (SQLite files, simulator
// links and outboxes). Removed with everything in it at the end.

#include <filesystem>

#include "otpbox/hsm/hsm.hpp"

namespace otpbox::bench {

inline constexpr const char* kSoftHsmModule = "/usr/lib/softhsm/libsofthsm2.so";
inline constexpr const char* kTokenLabel = "bench";

class BenchToken {
  public:
    // Exits the program when softhsm2-util cannot make the token: without
    // it a benchmark has nothing to measure.
    BenchToken();
    ~BenchToken();
    BenchToken(const BenchToken&) = delete;
    BenchToken& operator=(const BenchToken&) = delete;

    [[nodiscard]] const std::filesystem::path& dir() const noexcept { return m_dir; }

    // What Hsm::open needs to log in to this token.
    [[nodiscard]] hsm::HsmConfig hsm_config() const;

  private:
    std::filesystem::path m_dir;
};

}  // namespace otpbox::bench
