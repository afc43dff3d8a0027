#pragma once

// The SMS queue holds OTP texts and numbers until they are sent. It never
// keeps them in clear: the firmware hands it a Sealer backed by the HSM.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace otpbox::gsm {

class Sealer {
  public:
    virtual ~Sealer() = default;
    // Encrypts plaintext bound to the record id (associated data).
    [[nodiscard]] virtual std::vector<std::uint8_t> seal(std::string_view plaintext,
                                                         std::string_view record_id) = 0;
    // nullopt when the blob does not open under this id.
    [[nodiscard]] virtual std::optional<std::string> open(std::span<const std::uint8_t> sealed,
                                                          std::string_view record_id) = 0;
};

}  // namespace otpbox::gsm
