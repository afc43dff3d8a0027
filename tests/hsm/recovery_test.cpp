#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "hsm_test_support.hpp"
#include "otpbox/hsm/error.hpp"
#include "otpbox/hsm/hsm.hpp"
#include "otpbox/hsm/tls_key.hpp"

// Recovery through the project's fault-injecting module, which forwards to
// SoftHSM2 and fails or stalls calls as its control file says.

namespace otpbox::hsm {
namespace {

using otpbox::test::SoftHsmToken;
using otpbox::test::TempDir;
using otpbox::test::write_file;
using testing::to_bytes;

class HsmRecovery : public ::testing::Test {
  protected:
    HsmRecovery() {
        set_fault("pass");
        ::setenv("OTPBOX_FAULTMOD_CONTROL", m_control.c_str(), 1);
        m_config = testing::config_for(m_token);
        m_config.module_path =
            std::filesystem::path(OTPBOX_BINARY_DIR) / "hsm" / "otpbox_pkcs11_faultmod.so";
        m_config.environment["OTPBOX_FAULTMOD_TARGET"] = SoftHsmToken::module_path();
        m_config.call_timeout = std::chrono::milliseconds(300);
    }
    ~HsmRecovery() override { ::unsetenv("OTPBOX_FAULTMOD_CONTROL"); }

    void set_fault(const std::string& command) { write_file(m_control, command + "\n"); }

    // Runs f, which must throw HsmError, and returns its fault.
    template <class F>
    Fault fault_of(F&& f) {
        try {
            f();
        } catch (const HsmError& error) {
            EXPECT_TRUE(error.unavailable()) << error.what();
            return error.fault();
        }
        ADD_FAILURE() << "no HsmError thrown";
        return Fault::none;
    }

    SoftHsmToken m_token;
    TempDir m_dir;
    std::filesystem::path m_control = m_dir.path() / "fault";
    HsmConfig m_config;
};

TEST_F(HsmRecovery, TokenGone_UnavailableThenBackWithKeys) {
    const auto hsm = Hsm::open(m_config);
    hsm->generate_secret_key("mac-v1", KeyKind::hmac_sha256);
    const auto mac = hsm->hmac_sha256("mac-v1", to_bytes("data"));

    set_fault("removed");
    EXPECT_EQ(fault_of([&] { (void)hsm->hmac_sha256("mac-v1", to_bytes("data")); }),
              Fault::token_gone);
    EXPECT_EQ(fault_of([&] { (void)hsm->random_bytes(4); }), Fault::token_gone);
    const auto down = hsm->health();
    EXPECT_FALSE(down.ok);
    EXPECT_EQ(down.state, "token_gone");
    EXPECT_NE(down.detail.find("CKR_DEVICE_REMOVED"), std::string::npos);

    set_fault("pass");
    EXPECT_TRUE(
        otpbox::test::wait_until([&] { return hsm->health().ok; }, std::chrono::seconds(10)));
    // Logged in again and the key found again by label.
    EXPECT_EQ(hsm->hmac_sha256("mac-v1", to_bytes("data")), mac);
}

// Sessions in use when the token went away are closed in the module when
// their calls end, so an outage leaves no sessions behind.
TEST_F(HsmRecovery, TokenGone_SessionsInUseAreClosedWhenTheirCallsEnd) {
    const auto hsm = Hsm::open(m_config);
    (void)hsm->random_bytes(8);
    const auto before = testing::open_session_count(m_config);
    if (!before) {
        GTEST_SKIP() << "the module does not count its sessions";
    }
    set_fault("stall 800");
    std::vector<std::thread> in_flight;
    for (int i = 0; i < 3; ++i) {
        in_flight.emplace_back([&] { (void)fault_of([&] { (void)hsm->random_bytes(8); }); });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    set_fault("removed");
    EXPECT_EQ(fault_of([&] { (void)hsm->random_bytes(8); }), Fault::token_gone);
    for (auto& thread : in_flight) {
        thread.join();
    }
    set_fault("pass");
    ASSERT_TRUE(
        otpbox::test::wait_until([&] { return hsm->health().ok; }, std::chrono::seconds(10)));
    (void)hsm->random_bytes(8);
    EXPECT_EQ(testing::open_session_count(m_config), before);
}

// Robustness: many removed/pass cycles, with stalled and ordinary calls in
// flight on several threads, leave no sessions behind and never a wrong answer.
TEST_F(HsmRecovery, TokenGone_ManyCyclesWithCallsInFlightLeaveNoSessions) {
    const auto hsm = Hsm::open(m_config);
    hsm->generate_secret_key("mac-v1", KeyKind::hmac_sha256);
    const auto mac = hsm->hmac_sha256("mac-v1", to_bytes("data"));
    const auto before = testing::open_session_count(m_config);
    if (!before) {
        GTEST_SKIP() << "the module does not count its sessions";
    }
    std::atomic<bool> done{false};
    std::atomic<int> wrong{0};
    std::vector<std::thread> callers;
    for (int i = 0; i < 6; ++i) {
        callers.emplace_back([&] {
            while (!done) {
                try {
                    if (hsm->hmac_sha256("mac-v1", to_bytes("data")) != mac) {
                        ++wrong;
                    }
                    (void)hsm->random_bytes(8);
                } catch (const HsmError&) {
                }
            }
        });
    }
    const char* faults[] = {"removed",           "pass", "stall 400", "removed",
                            "session_invalid 3", "pass", "stall 100", "removed",
                            "not_logged_in 2",   "pass"};
    const int cycles = std::getenv("T_CYCLES") ? std::atoi(std::getenv("T_CYCLES")) : 6;
    for (int cycle = 0; cycle < cycles; ++cycle) {
        for (const auto* fault : faults) {
            set_fault(fault);
            std::this_thread::sleep_for(std::chrono::milliseconds(120));
        }
    }
    set_fault("pass");
    done = true;
    for (auto& thread : callers) {
        thread.join();
    }
    ASSERT_TRUE(
        otpbox::test::wait_until([&] { return hsm->health().ok; }, std::chrono::seconds(10)));
    EXPECT_EQ(hsm->hmac_sha256("mac-v1", to_bytes("data")), mac);
    EXPECT_EQ(wrong.load(), 0);
    const auto after = testing::open_session_count(m_config);
    ASSERT_TRUE(after);
    EXPECT_LE(*after, *before + 6) << "before " << *before;
    std::printf("sessions before %lu after %lu\n", (unsigned long)*before, (unsigned long)*after);
}

// A PIN refused on a reconnect is the pool's answer from then on, whichever
// caller met it: the look for the lost token (otpboxd's poll, which makes it
// fatal) hears of it even when another caller's reconnect was refused first,
// and the token is not asked again, since each wrong PIN counts towards
// locking it.
TEST_F(HsmRecovery, PinRefusedOnReconnect_IsNotTriedAgainAndEveryCallerHearsIt) {
    const auto hsm = Hsm::open(m_config);
    set_fault("removed");
    EXPECT_EQ(fault_of([&] { (void)hsm->random_bytes(4); }), Fault::token_gone);
    set_fault("pin_incorrect");
    // Past the pool's backoff, another caller (not the look) meets the PIN.
    ASSERT_TRUE(otpbox::test::wait_until(
        [&] {
            try {
                (void)hsm->random_bytes(4);
            } catch (const HsmError& error) {
                return error.fault() == Fault::pin;
            }
            return false;
        },
        std::chrono::seconds(5)));
    const auto pin_fault = [&](auto&& call) {
        try {
            call();
        } catch (const HsmError& error) {
            EXPECT_NE(std::string(error.what()).find("CKR_PIN_INCORRECT"), std::string::npos)
                << error.what();
            return error.fault() == Fault::pin;
        }
        return false;
    };
    // At once, within the backoff: the look is told the PIN was refused.
    EXPECT_TRUE(pin_fault([&] { hsm->look_for_token(); }));
    // A PIN the token would take now is not tried either.
    set_fault("pass");
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    EXPECT_TRUE(pin_fault([&] { (void)hsm->random_bytes(4); }));
    EXPECT_TRUE(pin_fault([&] { hsm->look_for_token(); }));
    EXPECT_FALSE(hsm->last_health().ok);
}

TEST_F(HsmRecovery, SessionLost_OnceIsRetriedOnAnotherSession) {
    const auto hsm = Hsm::open(m_config);
    set_fault("session_invalid 1");
    EXPECT_EQ(hsm->random_bytes(8).size(), 8u);
    EXPECT_TRUE(hsm->health().ok);
}

TEST_F(HsmRecovery, SessionLost_TwiceIsReported) {
    const auto hsm = Hsm::open(m_config);
    set_fault("session_invalid 2");
    EXPECT_EQ(fault_of([&] { (void)hsm->random_bytes(8); }), Fault::session_lost);
    // The count is spent: the next call works on a fresh session.
    EXPECT_EQ(hsm->random_bytes(8).size(), 8u);
}

TEST_F(HsmRecovery, NotLoggedIn_LogsInAgain) {
    const auto hsm = Hsm::open(m_config);
    hsm->generate_secret_key("mac-v1", KeyKind::hmac_sha256);
    set_fault("not_logged_in 1");
    EXPECT_EQ(hsm->hmac_sha256("mac-v1", to_bytes("data")).size(), 32u);
}

// The stalled call runs on its caller's thread: the watcher marks it once its
// deadline has passed, health says so while it is still in the module, and
// other calls go on on fresh sessions.
TEST_F(HsmRecovery, Stalled_HealthSaysSoAndFreshSessionsServe) {
    const auto hsm = Hsm::open(m_config);
    set_fault("stall 1500");
    Fault late = Fault::none;
    std::thread stalled([&] { late = fault_of([&] { (void)hsm->random_bytes(8); }); });
    EXPECT_TRUE(otpbox::test::wait_until([&] { return hsm->health().state == "stalled"; },
                                         std::chrono::milliseconds(1200)));
    const auto during = hsm->health();
    EXPECT_FALSE(during.ok);
    EXPECT_NE(during.detail.find("overran the deadline of 300 ms"), std::string::npos)
        << during.detail;

    set_fault("pass");
    EXPECT_EQ(hsm->random_bytes(8).size(), 8u);
    stalled.join();
    // It came back with its bytes, but too late to be used.
    EXPECT_EQ(late, Fault::stalled);
    EXPECT_TRUE(hsm->health().ok);
}

// A session whose call overran still counts until the call returns: with
// every session stuck, a caller waits the bounded time and is told so.
TEST_F(HsmRecovery, Stalled_NoSessionLeftIsABoundedWait) {
    m_config.max_sessions = 1;
    const auto hsm = Hsm::open(m_config);
    set_fault("stall 1500");
    std::thread stalled([&] { (void)fault_of([&] { (void)hsm->random_bytes(8); }); });
    ASSERT_TRUE(otpbox::test::wait_until([&] { return hsm->health().state == "stalled"; },
                                         std::chrono::milliseconds(1200)));
    set_fault("pass");
    const auto started = std::chrono::steady_clock::now();
    try {
        (void)hsm->random_bytes(8);
        ADD_FAILURE() << "a session was handed out while the only one was stuck";
    } catch (const HsmError& error) {
        EXPECT_EQ(error.fault(), Fault::stalled);
        EXPECT_NE(std::string(error.what()).find("busy"), std::string::npos) << error.what();
    }
    EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(250));
    stalled.join();
    // The stuck session was closed when its call returned; a new one serves.
    EXPECT_EQ(hsm->random_bytes(8).size(), 8u);
    EXPECT_TRUE(hsm->health().ok);
}

// A TLS handshake's signature waits no longer than its deadline: the stalled
// HSM call is left on its own thread and the signature fails in time.
TEST_F(HsmRecovery, Stalled_TlsSignatureFailsAtItsDeadline) {
    const auto hsm = Hsm::open(m_config);
    hsm->generate_key_pair("tls-v1", KeyKind::ec_p256);
    const auto key = hsm_private_key(hsm, "tls-v1", std::chrono::milliseconds(300));
    set_fault("stall 1500");
    const auto started = std::chrono::steady_clock::now();
    EXPECT_ANY_THROW((void)make_csr_pem(*key, "CN=otpbox.test"));
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(1200));

    // Right after the overrun, handshakes fail at once for a second instead
    // of each waiting out the deadline; then signing works again.
    const auto refused_at = std::chrono::steady_clock::now();
    EXPECT_ANY_THROW((void)make_csr_pem(*key, "CN=otpbox.test"));
    EXPECT_LT(std::chrono::steady_clock::now() - refused_at, std::chrono::milliseconds(250));
    set_fault("pass");
    EXPECT_TRUE(otpbox::test::wait_until(
        [&] {
            try {
                return make_csr_pem(*key, "CN=otpbox.test").find("BEGIN CERTIFICATE REQUEST") !=
                       std::string::npos;
            } catch (const HsmError&) {
                return false;
            }
        },
        std::chrono::seconds(5)));
    // The abandoned signature holds the Hsm until its call returns; the token
    // must not go away under it.
    EXPECT_TRUE(
        otpbox::test::wait_until([&] { return hsm.use_count() == 2; }, std::chrono::seconds(5)));
}

TEST_F(HsmRecovery, Stalled_EverySessionBusyIsABoundedWait) {
    m_config.max_sessions = 1;
    m_config.call_timeout = std::chrono::milliseconds(2000);
    const auto hsm = Hsm::open(m_config);
    set_fault("stall 800");
    std::thread slow([&] { (void)hsm->random_bytes(8); });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    // The second caller waits for the one session, then gets it.
    EXPECT_EQ(hsm->random_bytes(8).size(), 8u);
    slow.join();
}

}  // namespace
}  // namespace otpbox::hsm
