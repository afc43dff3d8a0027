#include "otpbox/firmware/secrets.hpp"

#include <algorithm>
#include <functional>
#include <stdexcept>

#include "otpbox/hsm/key_labels.hpp"

namespace otpbox::firmware {

namespace {

std::span<const std::uint8_t> as_bytes(std::string_view text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

std::string label(std::string_view base) {
    return hsm::keys::versioned(base, 1);
}

// Draws uniform values below limit from a byte source by rejection, so that
// no value is more likely than another (limit at most 256).
class UniformDraw {
  public:
    explicit UniformDraw(std::function<std::vector<std::uint8_t>()> refill)
        : m_refill(std::move(refill)) {}

    unsigned below(unsigned limit) {
        const unsigned ceiling = 256 - (256 % limit);
        for (;;) {
            if (m_next == m_bytes.size()) {
                m_bytes = m_refill();
                m_next = 0;
            }
            const unsigned value = m_bytes[m_next++];
            if (value < ceiling) {
                return value % limit;
            }
        }
    }

  private:
    std::function<std::vector<std::uint8_t>()> m_refill;
    std::vector<std::uint8_t> m_bytes;
    std::size_t m_next = 0;
};

// The associated data of the phone and SMS records begins with these; a
// secret's purpose may not, or one record could be opened as the other.
void require_own_purpose(std::string_view purpose) {
    if (purpose.empty() || purpose.starts_with("phone:") || purpose.starts_with("sms:")) {
        throw std::invalid_argument("a sealed secret needs a purpose of its own");
    }
}

class HsmSealer final : public gsm::Sealer {
  public:
    explicit HsmSealer(std::shared_ptr<hsm::Hsm> hsm) : m_hsm(std::move(hsm)) {}

    std::vector<std::uint8_t> seal(std::string_view plaintext,
                                   std::string_view record_id) override {
        const std::string aad = "sms:" + std::string(record_id);
        return m_hsm->aes_gcm_encrypt(label(hsm::keys::kDataEnc), as_bytes(plaintext),
                                      as_bytes(aad));
    }

    std::optional<std::string> open(std::span<const std::uint8_t> sealed,
                                    std::string_view record_id) override {
        const std::string aad = "sms:" + std::string(record_id);
        auto plain = m_hsm->aes_gcm_decrypt(label(hsm::keys::kDataEnc), sealed, as_bytes(aad));
        if (!plain) {
            return std::nullopt;
        }
        return std::string(plain->view());
    }

  private:
    std::shared_ptr<hsm::Hsm> m_hsm;
};

}  // namespace

std::string to_hex(std::span<const std::uint8_t> bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string hex;
    hex.reserve(bytes.size() * 2);
    for (const auto byte : bytes) {
        hex += kDigits[byte >> 4];
        hex += kDigits[byte & 0x0f];
    }
    return hex;
}

Secrets::Secrets(std::shared_ptr<hsm::Hsm> hsm) : m_hsm(std::move(hsm)) {}

std::string Secrets::random_id() {
    static constexpr char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    // 22 characters of 6 bits: 132 bits, of which the first 128 are random
    // enough for an unguessable id; 64 divides 256, so no rejection is needed.
    const auto bytes = m_hsm->random_bytes(22);
    std::string id;
    for (const auto byte : bytes) {
        id += kAlphabet[byte & 0x3f];
    }
    return id;
}

std::string Secrets::random_serial() {
    static constexpr std::string_view kAlphabet = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    UniformDraw draw([this] { return m_hsm->random_bytes(32); });
    std::string serial;
    for (int i = 0; i < 12; ++i) {
        serial += kAlphabet[draw.below(static_cast<unsigned>(kAlphabet.size()))];
    }
    return serial;
}

std::string Secrets::random_digits(unsigned count) {
    UniformDraw draw([this] { return m_hsm->random_bytes(16); });
    std::string digits;
    for (unsigned i = 0; i < count; ++i) {
        digits += static_cast<char>('0' + draw.below(10));
    }
    return digits;
}

std::vector<unsigned> Secrets::random_distinct(unsigned count, unsigned limit) {
    if (count > limit || limit > 256) {
        throw std::invalid_argument("random_distinct: bad count or limit");
    }
    UniformDraw draw([this] { return m_hsm->random_bytes(16); });
    std::vector<unsigned> chosen;
    while (chosen.size() < count) {
        const unsigned value = draw.below(limit);
        if (std::find(chosen.begin(), chosen.end(), value) == chosen.end()) {
            chosen.push_back(value);
        }
    }
    return chosen;
}

unsigned Secrets::card_key_version() {
    unsigned version = kKeyVersion;
    while (m_hsm->has_key(hsm::keys::versioned(hsm::keys::kCardKdk, version + 1))) {
        ++version;
    }
    return version;
}

std::string Secrets::card_cell(std::string_view serial, unsigned key_version, std::string_view cell,
                               const CardLayout& layout) {
    const auto alphabet_size = static_cast<unsigned>(layout.alphabet.size());
    unsigned counter = 0;
    UniformDraw draw([&] {
        // Each refill is a fresh HMAC; the counter keeps them distinct.
        const std::string input = "otpbox-card|" + std::string(serial) + "|" +
                                  std::to_string(key_version) + "|" + std::string(cell) + "|" +
                                  std::to_string(counter++);
        return m_hsm->hmac_sha256(hsm::keys::versioned(hsm::keys::kCardKdk, key_version),
                                  as_bytes(input));
    });
    std::string value;
    for (unsigned i = 0; i < layout.cell_length; ++i) {
        value += layout.alphabet[draw.below(alphabet_size)];
    }
    return value;
}

std::vector<std::uint8_t> Secrets::otp_record(std::string_view challenge, std::string_view code) {
    const std::string input = "otpbox-otp|" + std::string(challenge) + "|" + std::string(code);
    return m_hsm->hmac_sha256(label(hsm::keys::kOtpMac), as_bytes(input));
}

bool Secrets::otp_matches(std::string_view challenge, std::string_view code,
                          std::span<const std::uint8_t> record) {
    const std::string input = "otpbox-otp|" + std::string(challenge) + "|" + std::string(code);
    return m_hsm->hmac_sha256_verify(label(hsm::keys::kOtpMac), as_bytes(input), record);
}

std::vector<std::uint8_t> Secrets::seal_phone(std::string_view user, std::string_view e164) {
    const std::string aad = "phone:" + std::string(user);
    return m_hsm->aes_gcm_encrypt(label(hsm::keys::kDataEnc), as_bytes(e164), as_bytes(aad));
}

std::optional<std::string> Secrets::open_phone(std::string_view user,
                                               std::span<const std::uint8_t> sealed) {
    const std::string aad = "phone:" + std::string(user);
    auto plain = m_hsm->aes_gcm_decrypt(label(hsm::keys::kDataEnc), sealed, as_bytes(aad));
    if (!plain) {
        return std::nullopt;
    }
    return std::string(plain->view());
}

std::vector<std::uint8_t> Secrets::seal_secret(std::string_view purpose,
                                               std::string_view plaintext) {
    require_own_purpose(purpose);
    return m_hsm->aes_gcm_encrypt(label(hsm::keys::kDataEnc), as_bytes(plaintext),
                                  as_bytes(purpose));
}

std::optional<hsm::SecureBytes> Secrets::open_secret(std::string_view purpose,
                                                     std::span<const std::uint8_t> sealed) {
    require_own_purpose(purpose);
    return m_hsm->aes_gcm_decrypt(label(hsm::keys::kDataEnc), sealed, as_bytes(purpose));
}

std::string Secrets::phone_index(std::string_view e164) {
    const std::string input = "otpbox-phone|" + std::string(e164);
    return to_hex(m_hsm->hmac_sha256(label(hsm::keys::kDataIndex), as_bytes(input)));
}

std::string Secrets::pseudonym(std::string_view user) {
    const std::string input = "otpbox-user|" + std::string(user);
    return "u-" +
           to_hex(m_hsm->hmac_sha256(label(hsm::keys::kAuditMac), as_bytes(input))).substr(0, 16);
}

std::shared_ptr<gsm::Sealer> Secrets::sms_sealer() {
    return std::make_shared<HsmSealer>(m_hsm);
}

}  // namespace otpbox::firmware
