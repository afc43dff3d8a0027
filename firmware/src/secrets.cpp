#include "otpbox/firmware/secrets.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>

#include "otpbox/hsm/key_labels.hpp"

namespace otpbox::firmware {

class Secrets::KeyVersions {
  public:
    explicit KeyVersions(std::shared_ptr<hsm::Hsm> hsm) : m_hsm(std::move(hsm)) {}

    // The token is asked without the lock held: while one caller waits on
    // a slow (or stalled) token, the others go on with the version known.
    unsigned newest(std::string_view base) {
        constexpr auto kRecheck = std::chrono::seconds(2);
        std::unique_lock lock(m_mutex);
        auto known = m_known.find(base);
        if (known == m_known.end()) {
            known = m_known.emplace(std::string(base), Known{}).first;
        }
        const auto now = std::chrono::steady_clock::now();
        const bool fresh = known->second.version != 0 && now - known->second.checked < kRecheck;
        if (fresh || (known->second.version != 0 && known->second.probing)) {
            return known->second.version;
        }
        known->second.probing = true;
        const auto from = std::max(known->second.version, kKeyVersion);
        lock.unlock();
        unsigned found = 0;
        try {
            found = probe(base, from);
        } catch (...) {
            lock.lock();
            m_known[std::string(base)].probing = false;
            throw;
        }
        lock.lock();
        auto& entry = m_known[std::string(base)];
        entry.probing = false;
        entry.version = std::max(entry.version, found);
        entry.checked = now;
        return entry.version;
    }

    // The newest version from `from` up, asking the token.
    unsigned probe(std::string_view base, unsigned from) {
        unsigned version = from;
        while (m_hsm->has_key(hsm::keys::versioned(base, version + 1))) {
            ++version;
        }
        return version;
    }

    void forget() {
        std::lock_guard lock(m_mutex);
        m_known.clear();
    }

  private:
    struct Known {
        unsigned version = 0;
        std::chrono::steady_clock::time_point checked;
        bool probing = false;  // a caller is asking the token
    };

    std::shared_ptr<hsm::Hsm> m_hsm;
    std::mutex m_mutex;  // guards m_known
    std::map<std::string, Known, std::less<>> m_known;
};

namespace {

std::span<const std::uint8_t> as_bytes(std::string_view text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
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

// A sealed record of a later key version: kSealedMarker, the version, then
// the AES-GCM record (IV, ciphertext, tag). A version 1 record is the bare
// AES-GCM record, as made before keys rotated.
constexpr std::uint8_t kSealedMarker = 0xA7;

std::vector<std::uint8_t> seal_with(hsm::Hsm& token, Secrets::KeyVersions& versions,
                                    std::span<const std::uint8_t> plaintext,
                                    std::string_view associated) {
    const unsigned version = versions.newest(hsm::keys::kDataEnc);
    auto sealed = token.aes_gcm_encrypt(hsm::keys::versioned(hsm::keys::kDataEnc, version),
                                        plaintext, as_bytes(associated));
    if (version == 1) {
        return sealed;
    }
    std::vector<std::uint8_t> record{kSealedMarker, static_cast<std::uint8_t>(version)};
    record.insert(record.end(), sealed.begin(), sealed.end());
    return record;
}

std::optional<hsm::SecureBytes> open_with(hsm::Hsm& token, std::span<const std::uint8_t> sealed,
                                          std::string_view associated) {
    // A version 1 record may begin with the marker by chance; GCM's tag
    // tells the two readings apart.
    if (sealed.size() > 2 && sealed[0] == kSealedMarker && sealed[1] > 1) {
        const auto label = hsm::keys::versioned(hsm::keys::kDataEnc, sealed[1]);
        if (token.has_key(label)) {
            if (auto plain =
                    token.aes_gcm_decrypt(label, sealed.subspan(2), as_bytes(associated))) {
                return plain;
            }
        }
    }
    return token.aes_gcm_decrypt(hsm::keys::versioned(hsm::keys::kDataEnc, 1), sealed,
                                 as_bytes(associated));
}

class HsmSealer final : public gsm::Sealer {
  public:
    HsmSealer(std::shared_ptr<hsm::Hsm> hsm, std::shared_ptr<Secrets::KeyVersions> versions)
        : m_hsm(std::move(hsm)), m_versions(std::move(versions)) {}

    std::vector<std::uint8_t> seal(std::string_view plaintext,
                                   std::string_view record_id) override {
        return seal_with(*m_hsm, *m_versions, as_bytes(plaintext), "sms:" + std::string(record_id));
    }

    std::optional<std::string> open(std::span<const std::uint8_t> sealed,
                                    std::string_view record_id) override {
        auto plain = open_with(*m_hsm, sealed, "sms:" + std::string(record_id));
        if (!plain) {
            return std::nullopt;
        }
        return std::string(plain->view());
    }

  private:
    std::shared_ptr<hsm::Hsm> m_hsm;
    std::shared_ptr<Secrets::KeyVersions> m_versions;
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

Secrets::Secrets(std::shared_ptr<hsm::Hsm> hsm)
    : m_hsm(std::move(hsm)), m_versions(std::make_shared<KeyVersions>(m_hsm)) {}

unsigned Secrets::key_version(std::string_view base) {
    return m_versions->newest(base);
}

void Secrets::forget_key_versions() {
    m_versions->forget();
}

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
    return m_versions->probe(hsm::keys::kCardKdk, kKeyVersion);
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
    const unsigned version = key_version(hsm::keys::kOtpMac);
    const auto mac =
        m_hsm->hmac_sha256(hsm::keys::versioned(hsm::keys::kOtpMac, version), as_bytes(input));
    if (version == 1) {
        return mac;
    }
    std::vector<std::uint8_t> record{static_cast<std::uint8_t>(version)};
    record.insert(record.end(), mac.begin(), mac.end());
    return record;
}

bool Secrets::otp_matches(std::string_view challenge, std::string_view code,
                          std::span<const std::uint8_t> record) {
    constexpr std::size_t kMacSize = 32;
    unsigned version = 1;
    if (record.size() == kMacSize + 1) {
        version = record[0];
        record = record.subspan(1);
    }
    const auto label = hsm::keys::versioned(hsm::keys::kOtpMac, version);
    if (version == 0 || !m_hsm->has_key(label)) {
        return false;
    }
    const std::string input = "otpbox-otp|" + std::string(challenge) + "|" + std::string(code);
    return m_hsm->hmac_sha256_verify(label, as_bytes(input), record);
}

std::vector<std::uint8_t> Secrets::seal(std::span<const std::uint8_t> plaintext,
                                        std::string_view associated) {
    return seal_with(*m_hsm, *m_versions, plaintext, associated);
}

std::optional<hsm::SecureBytes> Secrets::open(std::span<const std::uint8_t> sealed,
                                              std::string_view associated) {
    return open_with(*m_hsm, sealed, associated);
}

std::vector<std::uint8_t> Secrets::seal_phone(std::string_view user, std::string_view e164) {
    return seal(as_bytes(e164), "phone:" + std::string(user));
}

std::optional<std::string> Secrets::open_phone(std::string_view user,
                                               std::span<const std::uint8_t> sealed) {
    auto plain = open(sealed, "phone:" + std::string(user));
    if (!plain) {
        return std::nullopt;
    }
    return std::string(plain->view());
}

std::vector<std::uint8_t> Secrets::seal_secret(std::string_view purpose,
                                               std::string_view plaintext) {
    require_own_purpose(purpose);
    return seal(as_bytes(plaintext), purpose);
}

std::optional<hsm::SecureBytes> Secrets::open_secret(std::string_view purpose,
                                                     std::span<const std::uint8_t> sealed) {
    require_own_purpose(purpose);
    return open(sealed, purpose);
}

std::string Secrets::phone_index(std::string_view e164) {
    const std::string input = "otpbox-phone|" + std::string(e164);
    const unsigned version = key_version(hsm::keys::kDataIndex);
    const auto hex = to_hex(
        m_hsm->hmac_sha256(hsm::keys::versioned(hsm::keys::kDataIndex, version), as_bytes(input)));
    return version == 1 ? hex : "v" + std::to_string(version) + ":" + hex;
}

std::string Secrets::pseudonym(std::string_view user) {
    std::string key(user);
    {
        std::lock_guard lock(m_pseudonyms_mutex);
        if (const auto kept = m_pseudonyms.find(key); kept != m_pseudonyms.end()) {
            return kept->second;
        }
    }
    const std::string input = "otpbox-user|" + key;
    auto name = "u-" + to_hex(m_hsm->hmac_sha256(hsm::keys::versioned(hsm::keys::kAuditMac, 1),
                                                 as_bytes(input)))
                           .substr(0, 16);
    std::lock_guard lock(m_pseudonyms_mutex);
    if (m_pseudonyms.size() >= kKeptPseudonyms) {
        // Starting afresh is simpler than tracking which name was used last,
        // and costs one HMAC per user afterwards.
        m_pseudonyms.clear();
    }
    m_pseudonyms.emplace(std::move(key), name);
    return name;
}

std::vector<std::uint8_t> Secrets::audit_mac(unsigned key_version,
                                             std::span<const std::uint8_t> input) {
    return m_hsm->hmac_sha256(hsm::keys::versioned(hsm::keys::kAuditMac, key_version), input);
}

std::shared_ptr<gsm::Sealer> Secrets::sms_sealer() {
    return std::make_shared<HsmSealer>(m_hsm, m_versions);
}

}  // namespace otpbox::firmware
