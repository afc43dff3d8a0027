// The API's TLS refusals as a tool no one here wrote sees them: openssl
// s_client against a whole provisioned instance whose server key is in the
// SoftHSM token (label otpbox-tls-v1). Each refusal is asserted by the alert
// s_client reports, so a handshake that fails for another reason (a broken
// server key, a missing file) fails the test instead of passing it.
// tests/firmware/api_server_test.cpp checks the same server with a file key
// by exit status only.

#include <gtest/gtest.h>

#include <string>

#include "dev_instance.hpp"

namespace otpbox::e2e {
namespace {

using namespace std::chrono_literals;

// What a client certificate of the development CA carries (provisioning's
// leaf profile), for one whose subject is not on the allow-list.
constexpr const char* kClientExtensions =
    "basicConstraints=critical,CA:false\n"
    "keyUsage=critical,digitalSignature\n"
    "extendedKeyUsage=clientAuth\n";

class TlsTools : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { instance = new DevInstance(); }
    static void TearDownTestSuite() {
        delete instance;
        instance = nullptr;
    }

    // openssl s_client as `client` ("portal", "intruder", ... of pki/, a
    // path stem, or "" for no certificate), its output with stderr, where
    // OpenSSL names the alert it received. `feed` is a shell command whose
    // output s_client sends; without one, -ign_eof keeps s_client reading until
    // the server ends the connection: in TLS 1.3 the client's handshake is done
    // once it has sent its certificate and Finished, so the server's refusal
    // arrives on the next read.
    [[nodiscard]] static test::CommandResult s_client(const std::string& client,
                                                      const std::string& options,
                                                      const std::string& feed = "") {
        std::string command =
            "timeout 20 openssl s_client -connect 127.0.0.1:" + std::to_string(instance->port) +
            " -servername localhost -CAfile '" + pki("ca.pem") + "' " + options;
        if (!client.empty()) {
            const auto stem = client.find('/') == std::string::npos ? pki(client) : client;
            command += " -cert '" + stem + ".crt' -key '" + stem + ".key'";
        }
        if (feed.empty()) {
            return test::run_command(command + " -ign_eof </dev/null 2>&1");
        }
        return test::run_command("(" + feed + ") | " + command + " 2>&1");
    }

    static std::string pki(const std::string& name) {
        return (instance->root() / "pki" / name).string();
    }

    // A certificate of the development CA for a subject not on the
    // allow-list; returns its path stem.
    static std::string stranger() {
        const auto stem = (instance->root() / "stranger").string();
        test::write_file(stem + ".ext", kClientExtensions);
        const auto made = test::run_command(
            "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout '" + stem +
            ".key' -subj '/O=otpbox development/CN=otpbox-stranger' 2>/dev/null | " +
            "openssl x509 -req -CA '" + pki("ca.pem") + "' -CAkey '" + pki("ca.key") +
            "' -set_serial 4711 -days 2 -sha256 -extfile '" + stem + ".ext' -out '" + stem +
            ".crt' 2>&1");
        EXPECT_EQ(made.status, 0) << made.output;
        return stem;
    }

    static DevInstance* instance;
};

DevInstance* TlsTools::instance = nullptr;

// One request on a connection the server closes after answering.
constexpr const char* kHealthRequest =
    "printf 'GET /v1/health HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n'";

// The control for every refusal below: the same command line with the
// portal's certificate gets in, over both protocols, served by the HSM key,
// and the server ends the connection with close_notify (RFC 8446 6.1), which
// OpenSSL 3 would otherwise report as "unexpected eof while reading".
TEST_F(TlsTools, PortalGetsInOverTls13AndTls12) {
    const struct {
        const char* option;
        const char* negotiated;
    } cases[] = {{"-tls1_3", "New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384"},
                 {"-tls1_2", "New, TLSv1.2, Cipher is ECDHE-ECDSA-AES256-GCM-SHA384"}};
    for (const auto& c : cases) {
        const auto result = s_client("portal", std::string(c.option) + " -ign_eof", kHealthRequest);
        EXPECT_NE(result.output.find(c.negotiated), std::string::npos) << result.output;
        EXPECT_NE(result.output.find("Verify return code: 0 (ok)"), std::string::npos);
        EXPECT_NE(result.output.find("HTTP/1.1 200 OK"), std::string::npos) << result.output;
        EXPECT_EQ(result.output.find(" alert "), std::string::npos) << result.output;
        EXPECT_EQ(result.output.find("unexpected eof"), std::string::npos) << result.output;
        EXPECT_EQ(result.status, 0) << result.output;
    }
}

// RFC 8446 4.4.2.4: a server that requires a certificate and gets none MAY
// abort with certificate_required; OpenSSL does.
TEST_F(TlsTools, NoClientCertificateGetsCertificateRequiredInTls13) {
    const auto result = s_client("", "-tls1_3");
    EXPECT_NE(result.status, 0);
    EXPECT_NE(result.output.find("tlsv13 alert certificate required"), std::string::npos)
        << result.output;
}

// TLS 1.2 has no certificate_required alert (RFC 5246 7.4.6): handshake_failure.
TEST_F(TlsTools, NoClientCertificateGetsHandshakeFailureInTls12) {
    const auto result = s_client("", "-tls1_2");
    EXPECT_NE(result.status, 0);
    EXPECT_NE(result.output.find("sslv3 alert handshake failure"), std::string::npos)
        << result.output;
}

TEST_F(TlsTools, IntrudersCertificateGetsUnknownCa) {
    for (const char* protocol : {"-tls1_3", "-tls1_2"}) {
        const auto result = s_client("intruder", protocol);
        EXPECT_NE(result.status, 0) << protocol;
        EXPECT_NE(result.output.find("tlsv1 alert unknown ca"), std::string::npos)
            << protocol << "\n"
            << result.output;
    }
}

// curl sends its request as soon as its side of a TLS 1.3 handshake is done,
// before the server has checked its certificate. The refusal's alert must
// still reach it, not a reset for the unread request; and the operator sees
// the refusals in the log and the metrics.
TEST_F(TlsTools, CurlSeesTheAlertAndTheDaemonCountsTheRefusals) {
    const auto curl = [](const std::string& certificate) {
        std::string command = "curl -sS --max-time 15 --cacert '" + pki("ca.pem") + "' ";
        if (!certificate.empty()) {
            command += "--cert '" + pki(certificate + ".crt") + "' --key '" +
                       pki(certificate + ".key") + "' ";
        }
        return test::run_command(command + "https://localhost:" + std::to_string(instance->port) +
                                 "/v1/health 2>&1");
    };
    constexpr int kRounds = 5;
    for (int round = 0; round < kRounds; ++round) {
        const auto none = curl("");
        EXPECT_NE(none.output.find("alert certificate required"), std::string::npos) << none.output;
        const auto intruder = curl("intruder");
        EXPECT_NE(intruder.output.find("alert unknown ca"), std::string::npos) << intruder.output;
    }

    EXPECT_TRUE(test::wait_until(
        [] {
            return test::read_file(instance->daemon_log()).find("event=handshakes_refused") !=
                   std::string::npos;
        },
        5s));
    const auto metrics = instance->call("GET", "/metrics", std::nullopt, "monitor");
    const std::string name = "otpbox_tls_handshakes_total{kind=\"refused\"} ";
    const auto at = metrics.body.find(name);
    ASSERT_NE(at, std::string::npos) << metrics.body;
    EXPECT_GE(std::stod(metrics.body.substr(at + name.size())), 2 * kRounds);
}

TEST_F(TlsTools, SubjectOffTheAllowListGetsBadCertificate) {
    const auto stem = stranger();
    for (const char* protocol : {"-tls1_3", "-tls1_2"}) {
        const auto result = s_client(stem, protocol);
        EXPECT_NE(result.status, 0) << protocol;
        EXPECT_NE(result.output.find("sslv3 alert bad certificate"), std::string::npos)
            << protocol << "\n"
            << result.output;
    }
}

// DEFAULT@SECLEVEL=0 lets Debian's OpenSSL offer TLS 1.1 and 1.0 at all; the
// server answers protocol_version (RFC 8446 D.2, RFC 5246 E.1).
TEST_F(TlsTools, Tls11AndTls10GetProtocolVersion) {
    for (const char* protocol : {"-tls1_1", "-tls1"}) {
        const auto result =
            s_client("portal", std::string(protocol) + " -cipher DEFAULT@SECLEVEL=0");
        EXPECT_NE(result.status, 0) << protocol;
        EXPECT_NE(result.output.find("tlsv1 alert protocol version"), std::string::npos)
            << protocol << "\n"
            << result.output;
    }
}

// A client offering only CBC suites shares none with the server: handshake_failure.
TEST_F(TlsTools, CbcSuitesGetHandshakeFailure) {
    for (const char* suite : {"ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA384",
                              "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES256-SHA"}) {
        const auto result = s_client("portal", std::string("-tls1_2 -cipher ") + suite);
        EXPECT_NE(result.status, 0) << suite;
        EXPECT_NE(result.output.find("sslv3 alert handshake failure"), std::string::npos)
            << suite << "\n"
            << result.output;
        EXPECT_NE(result.output.find("Cipher is (NONE)"), std::string::npos) << suite;
    }
}

// testssl.sh cannot test client-initiated renegotiation without a client
// certificate (scripts/check-tls); with the portal's, the server refuses it
// with a no_renegotiation alert (RFC 5246 7.2.2).
TEST_F(TlsTools, ClientInitiatedRenegotiationIsRefused) {
    // s_client takes "R" as a command only without -ign_eof; the pause keeps
    // its input open while it renegotiates.
    const auto result = s_client("portal", "-tls1_2", "printf 'R\\n'; sleep 3");
    EXPECT_NE(result.output.find("RENEGOTIATING"), std::string::npos) << result.output;
    EXPECT_NE(result.status, 0);
    EXPECT_NE(result.output.find("no renegotiation"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace otpbox::e2e
