#pragma once

// A byte buffer that wipes itself when it is freed, for PINs and plaintext.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace otpbox::hsm {

class SecureBytes {
  public:
    SecureBytes() = default;
    explicit SecureBytes(std::span<const std::uint8_t> bytes);
    explicit SecureBytes(std::string_view text);
    SecureBytes(const SecureBytes& other);
    SecureBytes& operator=(const SecureBytes& other);
    SecureBytes(SecureBytes&& other) noexcept;
    SecureBytes& operator=(SecureBytes&& other) noexcept;
    ~SecureBytes();

    [[nodiscard]] std::span<const std::uint8_t> bytes() const { return m_bytes; }
    [[nodiscard]] std::string_view view() const {
        return {reinterpret_cast<const char*>(m_bytes.data()), m_bytes.size()};
    }
    [[nodiscard]] std::size_t size() const { return m_bytes.size(); }
    [[nodiscard]] bool empty() const { return m_bytes.empty(); }

  private:
    void wipe() noexcept;
    std::vector<std::uint8_t> m_bytes;
};

}  // namespace otpbox::hsm
