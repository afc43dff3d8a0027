#pragma once

// Everything secret the firmware computes, and where: in the HSM. Random ids
// and codes come from its generator, card cells and OTP records from its
// HMAC keys, phone numbers are sealed under its data key.

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "otpbox/gsm/sealer.hpp"
#include "otpbox/hsm/hsm.hpp"
#include "otpbox/hsm/secure_bytes.hpp"

namespace otpbox::firmware {

struct CardLayout {
    unsigned columns = 8;
    unsigned rows = 8;
    unsigned cell_length = 2;
    std::string alphabet = "0123456789";
};

// Every key rotates: new records use the newest version of their key in the
// token, and each record says which version made it, so older versions keep
// opening and verifying what they made.
//
// - card cells: the card's row keeps its key version;
// - OTP records: a first byte names the version (a 32-byte record without
//   it is version 1);
// - sealed data (phone numbers, SIM PINs, SMS): a marker byte and the
//   version precede the AES-GCM record (a record without them is version 1);
// - phone index: "v<N>:" precedes the hex of versions after 1;
// - audit rows: a column keeps the version of the MAC.
class Secrets {
  public:
    static constexpr unsigned kKeyVersion = 1;

    explicit Secrets(std::shared_ptr<hsm::Hsm> hsm);

    // An opaque id of [A-Za-z0-9_-] with 128 random bits.
    [[nodiscard]] std::string random_id();
    // A card serial: 12 characters of [0-9A-Z], easy to read off a card.
    [[nodiscard]] std::string random_serial();
    // count digits, each uniform.
    [[nodiscard]] std::string random_digits(unsigned count);
    // count distinct indexes below limit, uniform.
    [[nodiscard]] std::vector<unsigned> random_distinct(unsigned count, unsigned limit);

    // The newest version of the card key in the token: new cards are derived
    // with it, older cards keep the version they were issued with. Looked up
    // each time (a card is issued rarely), so a key rotated at the console
    // counts at once.
    [[nodiscard]] unsigned card_key_version();

    // The newest version of the key named base (hsm::keys) in the token.
    // Looked up again at most every two seconds, or after
    // forget_key_versions(), so a key rotated at the console counts soon.
    [[nodiscard]] unsigned key_version(std::string_view base);
    void forget_key_versions();

    // HMAC(card key, serial, key version, cell) mapped to the card's alphabet.
    [[nodiscard]] std::string card_cell(std::string_view serial, unsigned key_version,
                                        std::string_view cell, const CardLayout& layout);

    // The record the database keeps of an OTP: HMAC(otp key, challenge id, code).
    [[nodiscard]] std::vector<std::uint8_t> otp_record(std::string_view challenge,
                                                       std::string_view code);
    [[nodiscard]] bool otp_matches(std::string_view challenge, std::string_view code,
                                   std::span<const std::uint8_t> record);

    // Mobile numbers at rest: AES-GCM bound to the user, and a blind index.
    [[nodiscard]] std::vector<std::uint8_t> seal_phone(std::string_view user,
                                                       std::string_view e164);
    [[nodiscard]] std::optional<std::string> open_phone(std::string_view user,
                                                        std::span<const std::uint8_t> sealed);
    [[nodiscard]] std::string phone_index(std::string_view e164);

    // Any other small secret at rest (a SIM PIN): AES-GCM under the data
    // key with purpose ("sim-pin:modem0") as associated data, so a sealed
    // value opens only for the purpose it was sealed for. purpose must not
    // be empty, nor begin like the phone ("phone:") or SMS ("sms:") records.
    [[nodiscard]] std::vector<std::uint8_t> seal_secret(std::string_view purpose,
                                                        std::string_view plaintext);
    // nullopt when sealed was changed, made for another purpose or under
    // another key.
    [[nodiscard]] std::optional<hsm::SecureBytes> open_secret(std::string_view purpose,
                                                              std::span<const std::uint8_t> sealed);

    // The name under which audit rows and logs refer to a user. Always made
    // with version 1 of the audit key, so a user keeps one name in the
    // audit log across rotations. Kept in memory once made (it is no
    // secret: the audit log shows it), for up to kKeptPseudonyms users.
    [[nodiscard]] std::string pseudonym(std::string_view user);
    static constexpr std::size_t kKeptPseudonyms = 16384;

    // HMAC of input under that version of the audit key.
    [[nodiscard]] std::vector<std::uint8_t> audit_mac(unsigned key_version,
                                                      std::span<const std::uint8_t> input);

    // Seals the SMS queue's rows under the data key.
    [[nodiscard]] std::shared_ptr<gsm::Sealer> sms_sealer();

    [[nodiscard]] hsm::Hsm& hsm() { return *m_hsm; }

    // AES-GCM under the newest data key, with the version in front.
    [[nodiscard]] std::vector<std::uint8_t> seal(std::span<const std::uint8_t> plaintext,
                                                 std::string_view associated);
    // nullopt when sealed was changed, made for other associated data, or
    // names a key version the token does not have.
    [[nodiscard]] std::optional<hsm::SecureBytes> open(std::span<const std::uint8_t> sealed,
                                                       std::string_view associated);

    // The newest version of each key, shared with the SMS queue's sealer.
    class KeyVersions;

  private:
    std::shared_ptr<hsm::Hsm> m_hsm;
    std::shared_ptr<KeyVersions> m_versions;
    std::mutex m_pseudonyms_mutex;
    std::unordered_map<std::string, std::string> m_pseudonyms;  // under m_pseudonyms_mutex
};

[[nodiscard]] std::string to_hex(std::span<const std::uint8_t> bytes);

}  // namespace otpbox::firmware
