// otpboxd takes what the technician console changes without a restart: a
// clients file, the TLS certificate, the TLS key in the HSM, a SIM PIN
// stored in the database, and new versions of the HSM's keys. Each test
// provisions its own instance and runs the daemon on a free port.

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "dev_instance.hpp"
#include "otpbox/firmware/clients_file.hpp"
#include "otpbox/firmware/config.hpp"
#include "otpbox/firmware/database.hpp"
#include "otpbox/firmware/secrets.hpp"
#include "otpbox/firmware/sim_pins.hpp"
#include "otpbox/firmware/status_file.hpp"
#include "otpbox/hsm/hsm.hpp"
#include "otpbox/hsm/key_labels.hpp"
#include "otpbox/hsm/tls_key.hpp"

namespace otpbox::e2e {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kPortalSubject = "CN=otpbox-portal,O=otpbox development";
const std::string kMonitorSubject = "CN=otpbox-monitor,O=otpbox development";
const std::string kPortalEntry =
    "[[api.clients]]\nsubject = \"" + kPortalSubject + "\"\nrole = \"portal\"\n";
const std::string kMonitorEntry =
    "[[api.clients]]\nsubject = \"" + kMonitorSubject + "\"\nrole = \"monitor\"\n";
// The development instance's server key, made in its token by provisioning.
const std::string kTlsLabel = hsm::keys::versioned(hsm::keys::kTls, 1);
// A second pair, as a technician's new `tls csr` under another label makes.
const std::string kOtherTlsLabel = hsm::keys::versioned(hsm::keys::kTls, 2);

// What a server certificate of the development CA needs for curl to accept it.
constexpr const char* kServerExtensions =
    "basicConstraints=critical,CA:false\n"
    "keyUsage=critical,digitalSignature\n"
    "extendedKeyUsage=serverAuth\n"
    "subjectAltName=DNS:localhost,IP:127.0.0.1\n";

class LiveChanges : public ::testing::Test {
  protected:
    LiveChanges() { dev.provision(); }

    [[nodiscard]] fs::path pki(const std::string& name) const { return dev.root() / "pki" / name; }
    [[nodiscard]] std::string log() const { return test::read_file(dev.daemon_log()); }

    [[nodiscard]] int count_in_log(const std::string& text) const {
        const auto all = log();
        int count = 0;
        for (auto at = all.find(text); at != std::string::npos; at = all.find(text, at + 1)) {
            ++count;
        }
        return count;
    }

    [[nodiscard]] bool log_shows(const std::string& text, std::chrono::milliseconds wait) const {
        return test::wait_until([&] { return log().find(text) != std::string::npos; }, wait);
    }

    // True once a new connection as client gets an HTTP answer (true) or is
    // refused at the handshake (false), as wanted.
    [[nodiscard]] bool gets_in_within(const std::string& client, bool wanted,
                                      std::chrono::milliseconds wait) const {
        return test::wait_until(
            [&] {
                return (dev.call("GET", "/v1/health", std::nullopt, client).status != 0) == wanted;
            },
            wait, 200ms);
    }

    // Makes a new file beside path and renames it over path, as the console does.
    static void replace_file(const fs::path& path, const std::string& text) {
        const auto next = path.string() + ".next";
        test::write_file(next, text);
        fs::rename(next, path);
    }

    // The development CA signs a server certificate for the key of csr.
    [[nodiscard]] std::string sign_server_csr(const fs::path& csr,
                                              const std::string& serial) const {
        const auto extensions = dev.root() / "server.ext";
        const auto out = dev.root() / "signed.crt";
        test::write_file(extensions, kServerExtensions);
        const auto result =
            test::run_command("openssl x509 -req -in '" + csr.string() + "' -CA '" +
                              pki("ca.pem").string() + "' -CAkey '" + pki("ca.key").string() +
                              "' -set_serial " + serial + " -days 2 -sha256 -extfile '" +
                              extensions.string() + "' -out '" + out.string() + "' 2>&1");
        EXPECT_EQ(result.status, 0) << result.output;
        return test::read_file(out);
    }

    // A certificate from the development CA for the token's pair of label,
    // made first unless it exists.
    [[nodiscard]] std::string certificate_for_hsm_key(const std::string& label,
                                                      const std::string& serial) const {
        const auto config = firmware::load_config(dev.root() / "otpbox.toml");
        auto token = hsm::Hsm::open(config.hsm);
        if (!token->has_key(label)) {
            token->generate_key_pair(label, hsm::KeyKind::ec_p256);
        }
        const auto key = hsm::hsm_private_key(token, label);
        const auto csr = dev.root() / "hsm-key.csr";
        const std::unique_ptr<X509_NAME, decltype(&X509_NAME_free)> subject(X509_NAME_new(),
                                                                            &X509_NAME_free);
        EXPECT_EQ(X509_NAME_add_entry_by_txt(subject.get(), "CN", MBSTRING_UTF8,
                                             reinterpret_cast<const unsigned char*>("localhost"),
                                             -1, -1, 0),
                  1);
        test::write_file(csr, hsm::make_csr_pem(*key, *subject));
        return sign_server_csr(csr, serial);
    }

    // The serial number of the certificate a new connection is served, as
    // openssl prints it ("serial=4242"), or "" when the handshake failed.
    [[nodiscard]] std::string served_serial() const {
        const auto result = test::run_command(
            "timeout 15 openssl s_client -connect 127.0.0.1:" + std::to_string(dev.port) +
            " -CAfile '" + pki("ca.pem").string() + "' -cert '" + pki("portal.crt").string() +
            "' -key '" + pki("portal.key").string() +
            "' </dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null");
        return result.output.substr(0, result.output.find('\n'));
    }

    // The state health reports for the first modem, "" when there is none.
    [[nodiscard]] std::string modem_state() const {
        const auto health = dev.call("GET", "/v1/health", std::nullopt, "monitor");
        if (health.status == 0 || health.body.empty()) {
            return "";
        }
        const auto body = health.json();
        const auto& modems = body.at("modems").as_array();
        return modems.empty() ? "" : std::string(modems[0].as_object().at("state").as_string());
    }

    // Names clients.toml in [api] unless the provisioned configuration does.
    void use_clients_file() const {
        if (test::read_file(dev.root() / "otpbox.toml").find("clients_file") == std::string::npos) {
            dev.replace_in_config("threads = 4\n",
                                  "threads = 4\nclients_file = \"clients.toml\"\n");
        }
    }

    DevInstance dev{DevInstance::kNotStarted};
};

TEST_F(LiveChanges, ClientsFileAllowsAMonitorAndTakesItAwayWhileServing) {
    dev.replace_in_config(kMonitorEntry, "");
    use_clients_file();
    dev.start_simulator();
    dev.start_daemon();
    ASSERT_EQ(dev.call("GET", "/v1/health", std::nullopt, "monitor").status, 0);

    const auto clients_file = dev.root() / "clients.toml";
    firmware::write_clients_file(clients_file, {{kMonitorSubject, api::Role::monitor}});
    ASSERT_TRUE(gets_in_within("monitor", true, 10s)) << log();
    EXPECT_NE(log().find("event=tls_reloaded clients=2"), std::string::npos) << log();
    EXPECT_EQ(dev.call("POST", "/v1/users/e2e.monitor/pincards", "{}", "monitor").status, 403);

    fs::remove(clients_file);
    EXPECT_TRUE(gets_in_within("monitor", false, 10s)) << log();
    EXPECT_NE(log().find("event=tls_reloaded clients=1"), std::string::npos) << log();
    EXPECT_NE(dev.call("GET", "/v1/health").status, 0);
}

TEST_F(LiveChanges, UnprovisionedWithoutClientsServesOnceTheClientsFileIsWritten) {
    dev.replace_in_config(kMonitorEntry, "");
    dev.replace_in_config(kPortalEntry, "");
    use_clients_file();
    dev.start_simulator();
    dev.start_daemon(false);
    ASSERT_TRUE(log_shows("allowed client subject", 20s)) << log();
    EXPECT_EQ(dev.call("GET", "/v1/health").status, 0);

    firmware::write_clients_file(dev.root() / "clients.toml",
                                 {{kPortalSubject, api::Role::portal}});
    EXPECT_TRUE(gets_in_within("portal", true, 15s)) << log();
    EXPECT_TRUE(dev.daemon->running());
}

TEST_F(LiveChanges, TlsKeyInTheHsmServesWithoutAKeyFile) {
    // Provisioning made the server's pair in the token: no key file is left.
    EXPECT_FALSE(fs::exists(pki("server.key")));
    EXPECT_NE(test::read_file(dev.root() / "otpbox.toml").find("key_label = \"" + kTlsLabel),
              std::string::npos);
    test::write_file(pki("server.crt"), certificate_for_hsm_key(kTlsLabel, "0x5151"));
    dev.start_simulator();
    dev.start_daemon();

    const auto health = dev.call("GET", "/v1/health");
    EXPECT_NE(health.status, 0) << log();
    EXPECT_EQ(health.json().at("provisioned").as_bool(), true);
    EXPECT_EQ(served_serial(), "serial=5151");
}

TEST_F(LiveChanges, CertificateForAnotherKeyKeepsItUnprovisionedWithOneLine) {
    // pki/server.crt belongs to the first pair, not to the new one named now.
    const auto certificate = certificate_for_hsm_key(kOtherTlsLabel, "0x5252");
    dev.replace_in_config("key_label = \"" + kTlsLabel, "key_label = \"" + kOtherTlsLabel);
    dev.start_simulator();
    dev.start_daemon(false);
    ASSERT_TRUE(log_shows("does not match the certificate", 20s)) << log();
    EXPECT_EQ(dev.call("GET", "/v1/health").status, 0);
    EXPECT_TRUE(dev.daemon->running());

    // The console installs the right certificate: serving starts, and the
    // refusal was logged once, not at every poll meanwhile.
    replace_file(pki("server.crt"), certificate);
    ASSERT_TRUE(gets_in_within("portal", true, 15s)) << log();
    EXPECT_EQ(count_in_log("does not match the certificate"), 1) << log();
    EXPECT_EQ(served_serial(), "serial=5252");
}

TEST_F(LiveChanges, ReplacedCertificateIsServedToNewConnectionsButABrokenOneIsNot) {
    dev.start_simulator();
    dev.start_daemon();
    const auto before = served_serial();
    ASSERT_FALSE(before.empty());
    ASSERT_NE(before, "serial=4242");

    replace_file(pki("server.crt"), certificate_for_hsm_key(kTlsLabel, "0x4242"));
    ASSERT_TRUE(test::wait_until([&] { return served_serial() == "serial=4242"; }, 10s, 200ms))
        << log();
    EXPECT_NE(dev.call("GET", "/v1/health").status, 0);

    replace_file(pki("server.crt"), "-----BEGIN CERTIFICATE-----\nbroken\n");
    ASSERT_TRUE(log_shows("event=tls_reload_failed", 10s)) << log();
    EXPECT_NE(log().find("kept=running_settings"), std::string::npos);
    EXPECT_EQ(served_serial(), "serial=4242");
    EXPECT_NE(dev.call("GET", "/v1/health").status, 0);
}

TEST_F(LiveChanges, SimPinStoredThroughTheDatabaseReadiesTheModemAndSmsLeave) {
    dev.start_simulator({"--sim-pin", "2468"});
    dev.start_daemon();
    ASSERT_TRUE(test::wait_until([&] { return modem_state() == "sim_locked"; }, 20s, 200ms))
        << modem_state();

    // As the console does it: its own connection to the database and the HSM.
    {
        const auto config = firmware::load_config(dev.root() / "otpbox.toml");
        firmware::Database database(config.database);
        firmware::Secrets secrets(hsm::Hsm::open(config.hsm));
        firmware::store_sim_pin(database, secrets, "modem0", "2468",
                                std::chrono::system_clock::now());
    }
    ASSERT_TRUE(test::wait_until([&] { return modem_state() == "ready"; }, 30s, 200ms))
        << modem_state() << "\n"
        << log();
    const auto text = log();
    EXPECT_NE(text.find("event=modem_state modem=modem0 state=sim_locked"), std::string::npos)
        << text;
    EXPECT_TRUE(log_shows("event=modem_state modem=modem0 state=ready was=sim_locked", 5s))
        << log();
    const auto restarted = text.find("event=modems_restarted reason=sim_pin");
    ASSERT_NE(restarted, std::string::npos) << text;
    const auto line = text.substr(restarted, text.find('\n', restarted) - restarted);
    EXPECT_EQ(line.find("2468"), std::string::npos) << line;

    ASSERT_EQ(dev.call("PUT", "/v1/users/e2e.pin/phone", R"({"number":"0170 2468000"})").status,
              200);
    const auto otp = dev.call("POST", "/v1/users/e2e.pin/otp");
    ASSERT_EQ(otp.status, 201) << otp.body;
    EXPECT_TRUE(dev.sms_code("1702468000")) << "no SMS in the outbox";
}

// The SIM that asked for a PIN refuses the one stored since: still
// sim_locked, but for another reason, which health names and the log
// shows in a line of its own.
TEST_F(LiveChanges, AWrongStoredSimPinIsLoggedAndNamedAsSuch) {
    dev.start_simulator({"--sim-pin", "2468"});
    dev.start_daemon();
    ASSERT_TRUE(test::wait_until([&] { return modem_state() == "sim_locked"; }, 20s, 200ms))
        << modem_state();
    ASSERT_TRUE(log_shows("error=\"the SIM asks for a PIN and none is stored\"", 5s)) << log();

    {
        const auto config = firmware::load_config(dev.root() / "otpbox.toml");
        firmware::Database database(config.database);
        firmware::Secrets secrets(hsm::Hsm::open(config.hsm));
        firmware::store_sim_pin(database, secrets, "modem0", "1357",
                                std::chrono::system_clock::now());
    }
    const std::string refused =
        "the SIM refused the stored PIN (CME 16 (incorrect password)); not tried again to keep "
        "the SIM from locking";
    ASSERT_TRUE(
        log_shows("event=modem_state modem=modem0 state=sim_locked was=sim_locked "
                  "error=\"" +
                      refused + "\"",
                  30s))
        << log();
    const auto health = dev.call("GET", "/v1/health", std::nullopt, "monitor");
    const auto modem = health.json().at("modems").as_array().at(0).as_object();
    EXPECT_EQ(modem.at("state").as_string(), "sim_locked") << health.body;
    EXPECT_EQ(modem.at("last_error").as_string(), refused) << health.body;
    EXPECT_EQ(log().find("1357"), std::string::npos);
}

TEST_F(LiveChanges, KeysRotatedInTheTokenAreUsedAndOldRecordsStillOpen) {
    dev.start_simulator();
    dev.start_daemon();
    ASSERT_EQ(dev.call("PUT", "/v1/users/e2e.before/phone", R"({"number":"0170 1357900"})").status,
              200);

    // As the console's hsm rotate does it: new versions beside the old ones.
    const auto config = firmware::load_config(dev.root() / "otpbox.toml");
    {
        auto token = hsm::Hsm::open(config.hsm);
        token->generate_secret_key(hsm::keys::versioned(hsm::keys::kDataEnc, 2),
                                   hsm::KeyKind::aes_256);
        token->generate_secret_key(hsm::keys::versioned(hsm::keys::kOtpMac, 2),
                                   hsm::KeyKind::hmac_sha256);
    }
    firmware::Database database(config.database);
    const auto sealed_version = [&](const std::string& user) -> int {
        auto row = database.prepare("SELECT phone_sealed FROM users WHERE id = ?");
        row.bind(1, user);
        if (!row.step()) {
            return 0;
        }
        const auto sealed = row.blob(0);
        return sealed.size() > 2 && sealed[0] == 0xA7 ? sealed[1] : 1;
    };
    EXPECT_TRUE(test::wait_until(
        [&] {
            return dev.call("PUT", "/v1/users/e2e.after/phone", R"({"number":"0170 2468100"})")
                           .status == 200 &&
                   sealed_version("e2e.after") == 2;
        },
        10s, 500ms))
        << "the daemon does not seal with the new data key";
    EXPECT_EQ(sealed_version("e2e.before"), 1);
    EXPECT_TRUE(log_shows("event=key_version key=otpbox-data-enc version=2", 5s)) << log();
    EXPECT_TRUE(log_shows("event=key_version key=otpbox-otp-mac version=2", 5s)) << log();

    // The number sealed under version 1 still opens; the code's record is
    // kept under the new OTP key.
    for (const auto& [user, suffix] :
         {std::pair{"e2e.before", "1701357900"}, std::pair{"e2e.after", "1702468100"}}) {
        const auto otp = dev.call("POST", std::string("/v1/users/") + user + "/otp");
        ASSERT_EQ(otp.status, 201) << otp.body;
        const auto code = dev.sms_code(suffix);
        ASSERT_TRUE(code) << "no SMS to " << user;
        auto record = database.prepare("SELECT code_mac FROM challenges WHERE id = ?");
        record.bind(1, otp.field("challenge"));
        ASSERT_TRUE(record.step());
        const auto mac = record.blob(0);
        ASSERT_EQ(mac.size(), 33u);
        EXPECT_EQ(mac[0], 2);
        EXPECT_EQ(dev.call("POST", "/v1/challenges/" + otp.field("challenge") + "/verify",
                           "{\"response\":\"" + *code + "\"}")
                      .status,
                  200);
    }
}

// A setting otpboxd takes only at a start, changed while it serves, is named
// in one WARN line and in the status file, and is not called a TLS reload;
// a TLS change made afterwards is reloaded as before.
TEST_F(LiveChanges, SettingsTakenOnlyAtAStartAreNamedAndNotCalledATlsReload) {
    use_clients_file();
    dev.start_simulator();
    dev.start_daemon();
    const auto config_file = dev.root() / "otpbox.toml";
    auto text = test::read_file(config_file);
    const auto change = [&](const std::string& from, const std::string& to) {
        const auto at = text.find(from);
        ASSERT_NE(at, std::string::npos) << from;
        text.replace(at, from.size(), to);
    };
    change("Ihr Anmeldecode: {code}.", "Ihr neuer Code: {code}.");
    change("port = " + std::to_string(dev.port) + "\n",
           "port = " + std::to_string(test::free_port()) + "\n");
    change("challenge_cells = 3\n", "challenge_cells = 4\n");
    change("[log]\n", "[audit]\nanchor_file = \"audit.anchor\"\n\n[log]\n");
    replace_file(config_file, text);

    const std::string line =
        "event=restart_needed keys=\"api.port,sms.template,pincard.challenge_cells,"
        "audit.anchor_file\"";
    ASSERT_TRUE(log_shows(line, 10s)) << log();
    EXPECT_NE(log().find(" warning " + line), std::string::npos) << log();
    const auto status = firmware::status_file_for(config_file);
    EXPECT_TRUE(test::wait_until(
        [&] {
            return test::read_file(status).find(
                       R"("restart_needed":["api.port","sms.template",)"
                       R"("pincard.challenge_cells","audit.anchor_file"])") != std::string::npos;
        },
        5s))
        << test::read_file(status);
    // Two more polls: still one line, and no TLS reload claimed.
    std::this_thread::sleep_for(4500ms);
    EXPECT_EQ(count_in_log("event=restart_needed"), 1) << log();
    EXPECT_EQ(count_in_log("event=tls_reloaded"), 0) << log();
    // The API still serves where it started, with the settings it started
    // with, and its health names what waits for a restart.
    const auto health = dev.call("GET", "/v1/health");
    EXPECT_NE(health.body.find(R"("restart_needed":["api.port","sms.template",)"
                               R"("pincard.challenge_cells","audit.anchor_file"])"),
              std::string::npos)
        << health.body;

    firmware::write_clients_file(dev.root() / "clients.toml",
                                 {{"CN=otpbox-backup,O=otpbox development", api::Role::portal}});
    ASSERT_TRUE(log_shows("event=tls_reloaded clients=3", 10s)) << log();
    EXPECT_EQ(count_in_log("event=restart_needed"), 1) << log();
}

}  // namespace
}  // namespace otpbox::e2e
