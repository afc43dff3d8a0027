// modem pin, modem test (modem list is with status).

#include <thread>

#include "console/console.hpp"
#include "otpbox/firmware/sim_pins.hpp"
#include "otpbox/firmware/status_file.hpp"
#include "otpbox/gsm/phone_number.hpp"
#include "otpbox/gsm/sms_queue.hpp"

namespace otpbox::provisioning::console {

namespace {

constexpr std::size_t kMinSimPin = 4;
constexpr std::size_t kMaxSimPin = 8;  // a SIM PIN is 4 to 8 digits
constexpr auto kTestValidity = std::chrono::minutes(10);
constexpr auto kTestWait = std::chrono::seconds(60);

// "sent" is not the end: the technician wants to know that the SMS reached
// the phone, which only the delivery report tells.
bool is_final(gsm::SmsStatus status) {
    return status == gsm::SmsStatus::delivered || status == gsm::SmsStatus::failed ||
           status == gsm::SmsStatus::expired;
}

}  // namespace

void Console::modem_pin(std::span<const std::string> arguments) {
    const auto& modems = m_appliance.config().modems;
    if (arguments.size() != 1) {
        say("Usage: modem pin NAME ('modem list' shows the names)\n");
        return;
    }
    const auto& name = arguments[0];
    if (std::none_of(modems.begin(), modems.end(),
                     [&](const auto& modem) { return modem.name == name; })) {
        say("No modem named '" + name.substr(0, 40) + "' in the configuration.\n");
        return;
    }
    auto pin = ask_new_secret("SIM PIN", kMinSimPin, true, kMaxSimPin);
    if (pin.empty()) {
        return;
    }
    try {
        firmware::store_sim_pin(m_appliance.database(), m_appliance.secrets(), name, pin,
                                std::chrono::system_clock::now());
    } catch (const std::invalid_argument& error) {
        std::fill(pin.begin(), pin.end(), '\0');
        say(std::string(error.what()) + "; nothing changed.\n");
        m_appliance.record("modem.pin", name, "refused");
        return;
    }
    std::fill(pin.begin(), pin.end(), '\0');
    say("SIM PIN of " + name +
        " stored, encrypted under the HSM's data key.\n"
        "The daemon restarts its modems with it within a few seconds.\n");
    m_appliance.record("modem.pin", name, "ok");
}

void Console::modem_test(std::span<const std::string> arguments) {
    if (arguments.empty()) {
        say("Usage: modem test NUMBER, e.g. modem test +491701234567 or 0170 1234567\n");
        return;
    }
    // A number typed with spaces arrives as several words.
    std::string typed;
    for (const auto& word : arguments) {
        typed += word;
    }
    const auto& config = m_appliance.config();
    const auto number = gsm::normalize_number(typed, config.sms.default_country);
    if (!number) {
        say("That is not a phone number; nothing sent.\n");
        return;
    }
    if (!gsm::country_allowed(*number, config.sms.allowed_countries)) {
        say("SMS go only to the countries in [sms] allowed_countries; nothing sent.\n");
        m_appliance.record("modem.test", gsm::mask_number(*number), "country_not_allowed");
        return;
    }
    const auto daemon = firmware::read_status_file(firmware::status_file_for(config.file));
    if (!daemon || !daemon->running) {
        say("The daemon is not running, so nothing would send it; nothing queued.\n");
        return;
    }
    auto& secrets = m_appliance.secrets();
    gsm::SmsQueue queue(config.database, secrets.sms_sealer(), {}, gsm::Recovery::leave_to_sender);
    const auto id = "test-" + secrets.random_id();
    const auto now = std::chrono::system_clock::now();
    queue.enqueue({id, *number, "otpbox test message. No action needed.", now + kTestValidity});
    const auto masked = gsm::mask_number(*number);
    m_appliance.record("modem.test", masked, "queued");
    say("Test SMS to " + masked + " queued; waiting up to 60 s (Ctrl-C stops waiting).\n");

    auto last = gsm::SmsStatus::queued;
    const auto give_up = std::chrono::steady_clock::now() + kTestWait;
    while (std::chrono::steady_clock::now() < give_up && !m_stop.load()) {
        const auto record = queue.find(id);
        if (record && record->status != last) {
            last = record->status;
            // status_name() calls a send in progress "queued", as the API
            // shows it; here the modem that took it is worth seeing.
            const bool sending = last == gsm::SmsStatus::sending;
            const std::string state = sending ? "sending" : std::string(gsm::status_name(last));
            const std::string modem =
                record->modem.empty() ? "" : (sending ? " on " : " by ") + record->modem;
            say("  " + state + modem + (record->failure.empty() ? "" : ": " + record->failure) +
                "\n");
        }
        if (record && is_final(record->status)) {
            m_appliance.record("modem.test", masked, gsm::status_name(record->status));
            return;
        }
        if (m_terminal.interrupted(std::chrono::seconds(1))) {
            say(last == gsm::SmsStatus::sent ? "Stopped waiting for the delivery report.\n"
                                             : "Stopped waiting; the SMS stays queued.\n");
            return;
        }
    }
    if (last == gsm::SmsStatus::sent) {
        m_appliance.record("modem.test", masked, "sent");
        say("Sent, but no delivery report within 60 s (not every network sends one).\n");
        return;
    }
    say("Still " + std::string(gsm::status_name(last)) + " after 60 s: see 'status'.\n");
}

}  // namespace otpbox::provisioning::console
