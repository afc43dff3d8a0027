#include "otpbox/firmware/sim_pins.hpp"

#include <chrono>
#include <string>

namespace otpbox::firmware {

namespace {

constexpr std::size_t kMinDigits = 4;
constexpr std::size_t kMaxDigits = 8;

// The same rule as a sim_pin_file in the configuration.
bool valid_pin(std::string_view pin) {
    return pin.size() >= kMinDigits && pin.size() <= kMaxDigits &&
           pin.find_first_not_of("0123456789") == std::string_view::npos;
}

std::string purpose_of(std::string_view modem) {
    return "sim-pin:" + std::string(modem);
}

std::int64_t unix_millis(TimePoint when) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch()).count();
}

}  // namespace

void store_sim_pin(Database& database, Secrets& secrets, std::string_view modem,
                   std::string_view pin, TimePoint now) {
    if (modem.empty()) {
        throw std::invalid_argument("a SIM PIN needs the modem's name");
    }
    if (!valid_pin(pin)) {
        throw std::invalid_argument("a SIM PIN is 4 to 8 digits");
    }
    // Sealed before the transaction: the HSM call need not hold the lock.
    const auto sealed = secrets.seal_secret(purpose_of(modem), pin);
    database.transaction([&] {
        database
            .prepare(
                "INSERT INTO sim_pins (modem, sealed, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (modem) DO UPDATE SET sealed = excluded.sealed, "
                "updated_at = excluded.updated_at")
            .bind(1, modem)
            .bind_blob(2, sealed)
            .bind(3, unix_millis(now))
            .run();
        database
            .prepare(
                "INSERT INTO sim_pins_version (id, version) VALUES (1, 1) "
                "ON CONFLICT (id) DO UPDATE SET version = version + 1")
            .run();
    });
}

std::optional<hsm::SecureBytes> load_sim_pin(Database& database, Secrets& secrets,
                                             std::string_view modem) {
    const auto sealed = database.read([&]() -> std::optional<std::vector<std::uint8_t>> {
        auto statement = database.prepare("SELECT sealed FROM sim_pins WHERE modem = ?");
        statement.bind(1, modem);
        if (!statement.step()) {
            return std::nullopt;
        }
        return statement.blob(0);
    });
    if (!sealed) {
        return std::nullopt;
    }
    auto pin = secrets.open_secret(purpose_of(modem), *sealed);
    if (!pin || !valid_pin(pin->view())) {
        throw SimPinError("the stored SIM PIN of " + std::string(modem) +
                          " does not open (changed, or sealed under another key)");
    }
    return pin;
}

std::int64_t sim_pins_version(Database& database) {
    return database.read([&] {
        auto statement = database.prepare("SELECT version FROM sim_pins_version WHERE id = 1");
        return statement.step() ? statement.integer(0) : std::int64_t{0};
    });
}

}  // namespace otpbox::firmware
