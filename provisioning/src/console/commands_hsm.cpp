// hsm init, hsm keys.

#include <sys/stat.h>

#include <algorithm>
#include <array>

#include "console/console.hpp"
#include "file_io.hpp"
#include "otpbox/hsm/key_labels.hpp"
#include "otpbox/hsm/token_admin.hpp"
#include "otpbox/provisioning/keys.hpp"
#include "otpbox/provisioning/token.hpp"

namespace otpbox::provisioning::console {

namespace {

constexpr std::size_t kMinPinLength = 6;

std::string_view kind_name(hsm::KeyKind kind) {
    switch (kind) {
        case hsm::KeyKind::hmac_sha256:
            return "HMAC-SHA256";
        case hsm::KeyKind::aes_256:
            return "AES-256";
        case hsm::KeyKind::ec_p256:
            return "EC P-256";
        case hsm::KeyKind::rsa_3072:
            return "RSA 3072";
    }
    return "?";
}

// "otpbox-card-kdk-v2" gives ("otpbox-card-kdk", 2); a label without a
// version suffix gives (label, 0).
std::pair<std::string, unsigned> split_version(const std::string& label) {
    const auto dash = label.rfind("-v");
    if (dash == std::string::npos || dash + 2 >= label.size() ||
        !std::all_of(label.begin() + static_cast<long>(dash) + 2, label.end(),
                     [](char c) { return c >= '0' && c <= '9'; })) {
        return {label, 0};
    }
    return {label.substr(0, dash), static_cast<unsigned>(std::stoul(label.substr(dash + 2)))};
}

}  // namespace

void Console::hsm_init(std::span<const std::string>) {
    if (!m_appliance.token_initialised()) {
        initialise_token();
        return;
    }
    say("The token '" + m_appliance.config().hsm.token_label + "' is initialised already.\n");
    const auto report = create_keys(m_appliance.hsm());
    unsigned created = 0;
    for (const auto& line : report) {
        say("  " + line.item + ": " + std::string(step_result_name(line.result)) + "\n");
        created += line.result == StepResult::created ? 1 : 0;
    }
    m_appliance.record("hsm.keys", "", created > 0 ? "created" : "present");
}

void Console::initialise_token() {
    const auto& config = m_appliance.config().hsm;
    say("Initialising token '" + config.token_label + "' with module\n  " +
        config.module_path.string() + "\nThe SO PIN is not stored: keep it in a safe.\n");
    // The token's own lengths are checked at once, before the PIN is asked
    // a second time.
    const auto lengths = hsm::new_token_pin_lengths(m_appliance.module());
    const auto min_length = std::max(kMinPinLength, lengths.min);
    auto so_pin = ask_new_secret("SO PIN", min_length, true, lengths.max);
    if (so_pin.empty()) {
        return;
    }
    auto user_pin = ask_new_secret("user PIN", min_length, true, lengths.max);
    if (user_pin.empty()) {
        std::fill(so_pin.begin(), so_pin.end(), '\0');
        return;
    }
    const auto result =
        provisioning::init_token(m_appliance.module(), config.token_label, so_pin, user_pin);
    std::fill(so_pin.begin(), so_pin.end(), '\0');
    detail::make_directory(config.pin_file.parent_path(), S_IRWXU);
    detail::write_file_atomically(config.pin_file, user_pin + "\n", S_IRUSR | S_IWUSR);
    std::fill(user_pin.begin(), user_pin.end(), '\0');
    say("Token " + std::string(step_result_name(result)) + "; user PIN written to\n  " +
        config.pin_file.string() + " (mode 0600).\n");

    m_appliance.forget_hsm();
    const auto report = create_keys(m_appliance.hsm());
    for (const auto& line : report) {
        say("  " + line.item + ": " + std::string(step_result_name(line.result)) + "\n");
    }
    m_appliance.record("hsm.init", config.token_label, "ok");
    say("The HSM is ready. Next: 'tls csr'.\n");
}

namespace {

struct Rotation {
    std::string_view base;
    hsm::KeyKind kind;
    std::string_view effect;  // what the new version changes, for the technician
};

// Every record names the version of the key that made it (firmware/secrets.hpp),
// so older versions stay in the token and keep opening what they made.
constexpr std::array<Rotation, 5> kRotations{{
    {hsm::keys::kCardKdk, hsm::KeyKind::hmac_sha256,
     "New cards will be derived with it; cards issued so far keep their version."},
    {hsm::keys::kOtpMac, hsm::KeyKind::hmac_sha256,
     "New SMS codes will be kept under it; codes already sent stay valid."},
    {hsm::keys::kDataEnc, hsm::KeyKind::aes_256,
     "Numbers, SIM PINs and SMS sealed from now on use it; older ones still open."},
    {hsm::keys::kDataIndex, hsm::KeyKind::hmac_sha256,
     "Numbers registered from now on are indexed with it."},
    {hsm::keys::kAuditMac, hsm::KeyKind::hmac_sha256,
     "New audit rows are MACed with it; audit verify checks each row with its own."},
}};

constexpr unsigned kMaxKeyVersion = 255;  // records keep the version in one byte

}  // namespace

void Console::hsm_rotate(std::span<const std::string> arguments) {
    if (arguments.size() != 1) {
        say("Usage: hsm rotate KEY, e.g. hsm rotate card-kdk\n"
            "KEY is one of card-kdk, otp-mac, data-enc, data-index, audit-mac.\n");
        return;
    }
    auto base = arguments[0];
    if (base.rfind("otpbox-", 0) != 0) {
        base = "otpbox-" + base;
    }
    const auto* rotation = std::find_if(kRotations.begin(), kRotations.end(),
                                        [&](const Rotation& entry) { return entry.base == base; });
    if (rotation == kRotations.end()) {
        say("No such key. KEY is one of card-kdk, otp-mac, data-enc, data-index,\n"
            "audit-mac. Nothing changed.\n");
        return;
    }
    auto& secrets = m_appliance.secrets();
    secrets.forget_key_versions();  // what the token holds now, not two seconds ago
    const unsigned version = secrets.key_version(base);
    if (version >= kMaxKeyVersion) {
        say(base + " has reached version " + std::to_string(kMaxKeyVersion) +
            ", the last one records can name. Nothing changed.\n");
        return;
    }
    const auto label = hsm::keys::versioned(base, version + 1);
    say("The current key is " + hsm::keys::versioned(base, version) + ", the new one " + label +
        ".\n" + std::string(rotation->effect) +
        "\nThe daemon takes the new version within seconds. Take an HSM backup afterwards.\n");
    if (!confirm("Make " + label + "?")) {
        say("Nothing changed.\n");
        return;
    }
    m_appliance.hsm().generate_secret_key(label, rotation->kind);
    // This console's own records (its audit rows) use the new version at once.
    secrets.forget_key_versions();
    say(label + " made in the HSM.\n");
    m_appliance.record("hsm.rotate", label, "ok");
}

void Console::hsm_keys(std::span<const std::string>) {
    auto keys = m_appliance.hsm().list_keys();
    std::sort(keys.begin(), keys.end(),
              [](const auto& a, const auto& b) { return a.label < b.label; });
    say("Keys in token '" + m_appliance.config().hsm.token_label + "':\n");
    if (keys.empty()) {
        say("  none; 'hsm init' creates them.\n");
    }
    for (const auto& key : keys) {
        const auto version = split_version(key.label).second;
        std::string line = "  " + key.label;
        line.resize(std::max<std::size_t>(line.size(), 26), ' ');
        line += " " + std::string(kind_name(key.kind));
        line.resize(std::max<std::size_t>(line.size(), 38), ' ');
        line += " version " + std::to_string(version);
        line += key.sensitive && !key.extractable ? ", stays in the HSM" : ", EXTRACTABLE";
        say(line + "\n");
    }
    for (const auto& spec : appliance_keys()) {
        if (std::none_of(keys.begin(), keys.end(),
                         [&](const auto& key) { return key.label == spec.label; })) {
            say("  missing: " + spec.label + " ('hsm init' creates it)\n");
        }
    }
    m_appliance.record("hsm.keys", "", "shown");
}

}  // namespace otpbox::provisioning::console
