// SIM PINs stored at the console: only 4 to 8 digits, sealed under the HSM's
// data key and bound to their modem, and a version that tells the daemon
// when to give its modems new PINs.

#include "otpbox/firmware/sim_pins.hpp"

#include <gtest/gtest.h>

#include "service_fixture.hpp"

namespace otpbox::firmware {
namespace {

using testing::ServiceFixture;

class SimPins : public ::testing::Test {
  protected:
    void store(std::string_view modem, std::string_view pin) {
        store_sim_pin(*m_parts.database, *m_parts.secrets, modem, pin, m_parts.clock.now());
    }
    std::optional<hsm::SecureBytes> load(std::string_view modem) {
        return load_sim_pin(*m_parts.database, *m_parts.secrets, modem);
    }
    std::int64_t version() { return sim_pins_version(*m_parts.database); }

    std::vector<std::uint8_t> sealed_of(std::string_view modem) {
        auto statement = m_parts.database->prepare("SELECT sealed FROM sim_pins WHERE modem = ?");
        statement.bind(1, modem);
        EXPECT_TRUE(statement.step());
        return statement.blob(0);
    }
    void set_sealed(std::string_view modem, const std::vector<std::uint8_t>& sealed) {
        m_parts.database->prepare("UPDATE sim_pins SET sealed = ? WHERE modem = ?")
            .bind_blob(1, sealed)
            .bind(2, modem)
            .run();
    }

    ServiceFixture m_parts;
};

TEST_F(SimPins, RoundTripAndNoneForAnotherModem) {
    store("modem0", "2468");
    const auto pin = load("modem0");
    ASSERT_TRUE(pin);
    EXPECT_EQ(pin->view(), "2468");
    EXPECT_FALSE(load("modem1"));
}

TEST_F(SimPins, EightDigitsAndLeadingZerosAreKept) {
    store("modem0", "00012345");
    EXPECT_EQ(load("modem0")->view(), "00012345");
}

TEST_F(SimPins, StoringAgainReplacesThePin) {
    store("modem0", "2468");
    store("modem0", "1357");
    EXPECT_EQ(load("modem0")->view(), "1357");
}

TEST_F(SimPins, WrongLengthOrLettersAreRefusedAndNothingIsStored) {
    for (const std::string_view bad :
         {"", "123", "123456789", "12a4", "12 34", "+1234", "１２３４"}) {
        EXPECT_THROW(store("modem0", bad), std::invalid_argument) << bad;
    }
    EXPECT_THROW(store("", "2468"), std::invalid_argument);
    EXPECT_FALSE(load("modem0"));
    EXPECT_EQ(version(), 0);
}

TEST_F(SimPins, TheDatabaseHoldsNoPlainPin) {
    store("modem0", "24681357");
    const auto sealed = sealed_of("modem0");
    const std::string bytes(sealed.begin(), sealed.end());
    EXPECT_EQ(bytes.find("24681357"), std::string::npos);
    // IV (12) || ciphertext (8) || tag (16).
    EXPECT_EQ(sealed.size(), 12u + 8u + 16u);
}

TEST_F(SimPins, ATamperedRowFailsToOpenCleanly) {
    store("modem0", "2468");
    auto sealed = sealed_of("modem0");
    sealed[14] ^= 0x01;
    set_sealed("modem0", sealed);
    try {
        (void)load("modem0");
        FAIL() << "a changed row opened";
    } catch (const SimPinError& error) {
        const std::string message = error.what();
        EXPECT_NE(message.find("modem0"), std::string::npos) << message;
        EXPECT_EQ(message.find("2468"), std::string::npos) << message;
    }
}

TEST_F(SimPins, ARowMovedToAnotherModemDoesNotOpen) {
    store("modem0", "2468");
    store("modem1", "1357");
    set_sealed("modem1", sealed_of("modem0"));
    EXPECT_THROW((void)load("modem1"), SimPinError);
    EXPECT_EQ(load("modem0")->view(), "2468");
}

TEST_F(SimPins, VersionChangesWithEveryStoreEvenWithinOneMillisecond) {
    EXPECT_EQ(version(), 0);
    store("modem0", "2468");
    const auto first = version();
    store("modem0", "2468");
    const auto second = version();
    store("modem1", "1357");
    EXPECT_NE(first, 0);
    EXPECT_NE(second, first);
    EXPECT_NE(version(), second);
}

TEST_F(SimPins, VersionIsSeenThroughASecondConnection) {
    Database other(m_parts.config.database);
    const auto before = sim_pins_version(other);
    store("modem0", "2468");
    EXPECT_NE(sim_pins_version(other), before);
    EXPECT_EQ(load_sim_pin(other, *m_parts.secrets, "modem0")->view(), "2468");
}

TEST_F(SimPins, SealedSecretsAreBoundToTheirPurpose) {
    auto& secrets = *m_parts.secrets;
    const auto sealed = secrets.seal_secret("sim-pin:modem0", "2468");
    EXPECT_EQ(secrets.open_secret("sim-pin:modem0", sealed)->view(), "2468");
    EXPECT_FALSE(secrets.open_secret("sim-pin:modem1", sealed));
    EXPECT_THROW((void)secrets.seal_secret("", "2468"), std::invalid_argument);
    EXPECT_THROW((void)secrets.seal_secret("phone:alice", "2468"), std::invalid_argument);
}

}  // namespace
}  // namespace otpbox::firmware
