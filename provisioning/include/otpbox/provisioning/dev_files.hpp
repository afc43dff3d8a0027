#pragma once

// The development instance's HSM files and configuration.

#include <cstdint>
#include <filesystem>
#include <string>

#include "otpbox/provisioning/step.hpp"

namespace otpbox::provisioning {

inline constexpr std::string_view kSoftHsmModule = "/usr/lib/softhsm/libsofthsm2.so";
inline constexpr std::string_view kDevTokenLabel = "otpbox";

// hsm/user.pin and hsm/so.pin (random digits, mode 0600; not with_pins on
// a factory-fresh instance, whose technician chooses them) and
// hsm/softhsm2.conf naming hsm/tokens/ by its absolute path, under dir.
[[nodiscard]] StepReport write_dev_hsm_files(const std::filesystem::path& dir,
                                             bool with_pins = true);

// Only hsm/so.pin and hsm/user.pin, each unless it exists.
[[nodiscard]] StepReport write_dev_pin_files(const std::filesystem::path& dir);

struct DevConfigOptions {
    std::uint16_t port = 8443;
    std::string module_path{kSoftHsmModule};
    std::string token_label{kDevTokenLabel};
    // Factory-fresh: no TLS identity, portal trust or allowed client; the
    // TLS key is to be made in the HSM (api.key_label).
    bool factory = false;
};

// Writes dir/otpbox.toml for the development instance unless it exists; its
// paths are relative to dir. Throws std::runtime_error when it cannot write.
[[nodiscard]] StepResult write_dev_config(const std::filesystem::path& dir,
                                          const DevConfigOptions& options = {});

// A development console password: 16 random lowercase letters and digits.
[[nodiscard]] std::string random_dev_password();

// Reads a one-line secret file (a PIN) without its line end.
[[nodiscard]] std::string read_secret_file(const std::filesystem::path& path);

}  // namespace otpbox::provisioning
