#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
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

    // Runs f and tells whether it threw the refused PIN.
    template <class F>
    bool pin_refused(F&& f) {
        try {
            f();
        } catch (const HsmError& error) {
            EXPECT_NE(std::string(error.what()).find("CKR_PIN_INCORRECT"), std::string::npos)
                << error.what();
            return error.fault() == Fault::pin;
        }
        return false;
    }

    // The C_Login calls made through the fault module so far.
    [[nodiscard]] unsigned long login_calls() const {
        void* module = ::dlopen(m_config.module_path.c_str(), RTLD_NOW | RTLD_NOLOAD);
        if (module == nullptr) {
            ADD_FAILURE() << "the fault module is not loaded";
            return 0;
        }
        using Count = unsigned long (*)();
        auto count = reinterpret_cast<Count>(::dlsym(module, "otpbox_faultmod_login_calls"));
        const auto calls = count != nullptr ? count() : 0;
        ::dlclose(module);
        EXPECT_NE(count, nullptr);
        return calls;
    }

    // How long f took, in milliseconds.
    template <class F>
    static long long millis_of(F&& f) {
        const auto started = std::chrono::steady_clock::now();
        f();
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - started)
            .count();
    }

    SoftHsmToken m_token;
    TempDir m_dir;
    std::filesystem::path m_control = m_dir.path() / "fault";
    HsmConfig m_config;
};

// Another process made a key of the same label between the check and the
// generation: the key made here is destroyed again and the caller told.
TEST_F(HsmRecovery, KeyMadeTwiceAtOnce_TheNewOneIsDestroyed) {
    auto hsm = Hsm::open(m_config);
    set_fault("twin_generate");
    const std::string label = "otpbox-card-kdk-v2";
    try {
        hsm->generate_secret_key(label, KeyKind::hmac_sha256);
        ADD_FAILURE() << "a second key of the label was kept";
    } catch (const HsmError& error) {
        EXPECT_NE(std::string(error.what()).find(label), std::string::npos) << error.what();
        EXPECT_EQ(error.fault(), Fault::data);
    }
    set_fault("pass");
    const auto keys = hsm->list_keys();
    EXPECT_EQ(std::count_if(keys.begin(), keys.end(),
                            [&](const KeyInfo& key) { return key.label == label; }),
              1);
    EXPECT_EQ(hsm->hmac_sha256(label, to_bytes("card")).size(), 32u);
}

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
    const auto logins = login_calls();
    // At once, within the backoff: the look is told the PIN was refused.
    EXPECT_TRUE(pin_refused([&] { hsm->look_for_token(); }));
    // A PIN the token would take now is not tried either.
    set_fault("pass");
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    EXPECT_TRUE(pin_refused([&] { (void)hsm->random_bytes(4); }));
    EXPECT_TRUE(pin_refused([&] { hsm->look_for_token(); }));
    EXPECT_FALSE(hsm->last_health().ok);
    EXPECT_EQ(login_calls(), logins);
}

// The same for a PIN refused when a lost login is renewed: the token is asked
// once, and every caller from then on, the look for a lost token included
// (otpboxd's poll, which makes it fatal), is told without another C_Login.
TEST_F(HsmRecovery, PinRefusedOnLoginAgain_IsNotTriedAgainAndEveryCallerHearsIt) {
    const auto hsm = Hsm::open(m_config);
    (void)hsm->random_bytes(8);
    const auto logins = login_calls();
    set_fault("not_logged_in 100 pin_incorrect");
    EXPECT_TRUE(pin_refused([&] { (void)hsm->random_bytes(4); }));
    EXPECT_EQ(login_calls(), logins + 1);

    std::vector<std::thread> callers;
    std::atomic<int> told{0};
    for (int i = 0; i < 4; ++i) {
        callers.emplace_back([&] {
            if (pin_refused([&] { (void)hsm->random_bytes(4); })) {
                ++told;
            }
        });
    }
    for (auto& thread : callers) {
        thread.join();
    }
    EXPECT_EQ(told.load(), 4);
    EXPECT_TRUE(pin_refused([&] { hsm->look_for_token(); }));
    const auto seen = hsm->last_health();
    EXPECT_FALSE(seen.ok);
    EXPECT_NE(seen.detail.find("CKR_PIN_INCORRECT"), std::string::npos) << seen.detail;

    // A PIN the token would take now is not tried either.
    set_fault("pass");
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    EXPECT_TRUE(pin_refused([&] { (void)hsm->random_bytes(4); }));
    EXPECT_TRUE(pin_refused([&] { hsm->look_for_token(); }));
    EXPECT_FALSE(hsm->health().ok);
    EXPECT_EQ(login_calls(), logins + 1);
}

// C_Login runs without the pool's lock when a lost login is renewed: a module
// that hangs in it holds up neither health nor other callers; a caller that
// meets a lost login meanwhile waits for that login, no longer than its
// deadline, instead of logging in a second time; and health says the login
// stalls once it has overrun, until it returns.
TEST_F(HsmRecovery, LoginAgainStalls_HoldsUpNeitherHealthNorOtherCallers) {
    const auto hsm = Hsm::open(m_config);
    (void)hsm->random_bytes(8);
    const auto logins = login_calls();
    set_fault("not_logged_in 2 login_stall 2000");
    Fault renewing_fault = Fault::none;
    std::thread renewing([&] { renewing_fault = fault_of([&] { (void)hsm->random_bytes(8); }); });
    ASSERT_TRUE(otpbox::test::wait_until([&] { return login_calls() == logins + 1; },
                                         std::chrono::seconds(1)));

    EXPECT_LT(millis_of([&] { EXPECT_TRUE(hsm->last_health().ok); }), 100);
    Fault waited = Fault::none;
    EXPECT_LT(millis_of([&] { waited = fault_of([&] { (void)hsm->random_bytes(8); }); }), 1000);
    EXPECT_EQ(waited, Fault::stalled);
    EXPECT_LT(millis_of([&] { EXPECT_EQ(hsm->random_bytes(8).size(), 8u); }), 250);
    EXPECT_TRUE(otpbox::test::wait_until([&] { return hsm->last_health().state == "stalled"; },
                                         std::chrono::milliseconds(1000)));
    HsmHealth during;
    EXPECT_LT(millis_of([&] { during = hsm->health(); }), 250);
    EXPECT_EQ(during.state, "stalled") << during.detail;

    renewing.join();
    EXPECT_EQ(renewing_fault, Fault::stalled);
    EXPECT_EQ(login_calls(), logins + 1);
    EXPECT_TRUE(hsm->health().ok);
    EXPECT_EQ(hsm->random_bytes(8).size(), 8u);
}

// A call that fails on a connection dropped since leaves the newer one alone:
// a call is in the module when the token goes, another caller drops the
// connection, a new one is made once the token is back, and only then does
// the first call come back with the token gone.
TEST_F(HsmRecovery, TokenGoneOnAnOlderConnection_LeavesTheNewerOneAlone) {
    m_config.call_timeout = std::chrono::milliseconds(10000);
    const auto hsm = Hsm::open(m_config);
    (void)hsm->random_bytes(8);
    set_fault("removed_after 3000");
    Fault late = Fault::none;
    std::thread old_call([&] { late = fault_of([&] { (void)hsm->random_bytes(8); }); });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    set_fault("removed");
    EXPECT_EQ(fault_of([&] { (void)hsm->random_bytes(8); }), Fault::token_gone);
    set_fault("pass");
    ASSERT_TRUE(otpbox::test::wait_until([&] { return hsm->health().ok; },
                                         std::chrono::milliseconds(2500)));

    old_call.join();
    EXPECT_EQ(late, Fault::token_gone);
    const auto after = hsm->last_health();
    EXPECT_TRUE(after.ok) << after.state << ": " << after.detail;
    EXPECT_EQ(hsm->random_bytes(8).size(), 8u);
}

// What is left of a lost token is closed without the pool's lock: a module
// slow to close sessions holds up only the caller that met the loss. The
// token is looked for again only once they are closed, so that no session of
// the new connection can reuse a handle still to be closed, and none is left.
TEST_F(HsmRecovery, TokenGoneSlowToClose_HoldsUpNeitherHealthNorOtherCallers) {
    const auto hsm = Hsm::open(m_config);
    (void)hsm->random_bytes(8);
    const auto before = testing::open_session_count(m_config);
    if (!before) {
        GTEST_SKIP() << "the module does not count its sessions";
    }
    set_fault("removed close_stall 2000");
    std::thread losing([&] { (void)fault_of([&] { (void)hsm->random_bytes(8); }); });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));

    HsmHealth seen;
    EXPECT_LT(millis_of([&] { seen = hsm->last_health(); }), 100);
    EXPECT_EQ(seen.state, "token_gone");
    EXPECT_LT(millis_of([&] {
                  EXPECT_EQ(fault_of([&] { (void)hsm->random_bytes(8); }), Fault::token_gone);
              }),
              100);
    EXPECT_LT(millis_of([&] { (void)hsm->health(); }), 100);

    // Past the backoff, with the login session still being closed.
    set_fault("pass");
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    EXPECT_EQ(fault_of([&] { (void)hsm->random_bytes(8); }), Fault::token_gone);

    losing.join();
    ASSERT_TRUE(
        otpbox::test::wait_until([&] { return hsm->health().ok; }, std::chrono::seconds(10)));
    (void)hsm->random_bytes(8);
    EXPECT_EQ(testing::open_session_count(m_config), before);
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
    EXPECT_ANY_THROW((void)make_csr_pem(*key, *testing::name_of({{"CN", "otpbox.test"}})));
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(1200));

    // Right after the overrun, handshakes fail at once for a second instead
    // of each waiting out the deadline; then signing works again.
    const auto refused_at = std::chrono::steady_clock::now();
    EXPECT_ANY_THROW((void)make_csr_pem(*key, *testing::name_of({{"CN", "otpbox.test"}})));
    EXPECT_LT(std::chrono::steady_clock::now() - refused_at, std::chrono::milliseconds(250));
    set_fault("pass");
    EXPECT_TRUE(otpbox::test::wait_until(
        [&] {
            try {
                return make_csr_pem(*key, *testing::name_of({{"CN", "otpbox.test"}}))
                           .find("BEGIN CERTIFICATE REQUEST") != std::string::npos;
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
