// Session tickets: the rotating keys that seal them, the check a resumed
// client passes again, and resumption against a real server with an Asio
// TLS client that keeps its session between connections. Every server runs
// on 127.0.0.1 on a free port and is stopped by its test.

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <array>
#include <cstdio>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "../../firmware/src/api/session_tickets.hpp"
#include "otpbox/firmware/api/server.hpp"
#include "test_pki.hpp"
#include "test_support.hpp"

namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using otpbox::api::AllowedClient;
using otpbox::api::Role;
using otpbox::api::Server;
using otpbox::api::TicketKeys;
using otpbox::api::TlsConfig;
using otpbox::test::TestPki;

const std::string& kPortal = otpbox::test::kPortalSubject;
const std::string& kMonitor = otpbox::test::kMonitorSubject;
const std::string& kRevoked = otpbox::test::kRevokedSubject;

// ---- TicketKeys ------------------------------------------------------------

using Name = std::array<unsigned char, TicketKeys::kNameSize>;

struct Contexts {
    std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> cipher{EVP_CIPHER_CTX_new(),
                                                                           EVP_CIPHER_CTX_free};
    std::unique_ptr<EVP_MAC, decltype(&EVP_MAC_free)> hmac{EVP_MAC_fetch(nullptr, "HMAC", nullptr),
                                                           EVP_MAC_free};
    std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)> mac{EVP_MAC_CTX_new(hmac.get()),
                                                                  EVP_MAC_CTX_free};
};

// What a sealed ticket carries here: the key's name, the IV, and a
// ciphertext and MAC of `text` made with the contexts the keys readied.
struct Sealed {
    int result = -1;
    Name name{};
    std::array<unsigned char, EVP_MAX_IV_LENGTH> iv{};
    std::vector<unsigned char> ciphertext;
    std::vector<unsigned char> mac;
};

std::vector<unsigned char> mac_of(EVP_MAC_CTX* mac, const std::vector<unsigned char>& data) {
    std::vector<unsigned char> out(EVP_MAX_MD_SIZE);
    std::size_t size = 0;
    if (EVP_MAC_init(mac, nullptr, 0, nullptr) != 1 ||
        EVP_MAC_update(mac, data.data(), data.size()) != 1 ||
        EVP_MAC_final(mac, out.data(), &size, out.size()) != 1) {
        return {};
    }
    out.resize(size);
    return out;
}

Sealed seal(TicketKeys& keys, const std::string& text, TicketKeys::Clock::time_point now) {
    Sealed sealed;
    Contexts contexts;
    sealed.result =
        keys.seal(sealed.name, sealed.iv.data(), contexts.cipher.get(), contexts.mac.get(), now);
    if (sealed.result != 1) {
        return sealed;
    }
    sealed.ciphertext.resize(text.size() + EVP_MAX_BLOCK_LENGTH);
    int first = 0;
    int last = 0;
    EXPECT_EQ(EVP_EncryptUpdate(contexts.cipher.get(), sealed.ciphertext.data(), &first,
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size())),
              1);
    EXPECT_EQ(EVP_EncryptFinal_ex(contexts.cipher.get(), sealed.ciphertext.data() + first, &last),
              1);
    sealed.ciphertext.resize(static_cast<std::size_t>(first + last));
    sealed.mac = mac_of(contexts.mac.get(), sealed.ciphertext);
    return sealed;
}

struct Opened {
    int result = -1;
    bool mac_matches = false;
    std::string text;
};

Opened open(TicketKeys& keys, const Sealed& sealed, TicketKeys::Clock::time_point now) {
    Opened opened;
    Contexts contexts;
    opened.result =
        keys.open(sealed.name, sealed.iv.data(), contexts.cipher.get(), contexts.mac.get(), now);
    if (opened.result == 0) {
        return opened;
    }
    opened.mac_matches = mac_of(contexts.mac.get(), sealed.ciphertext) == sealed.mac;
    std::vector<unsigned char> plain(sealed.ciphertext.size() + EVP_MAX_BLOCK_LENGTH);
    int first = 0;
    int last = 0;
    if (EVP_DecryptUpdate(contexts.cipher.get(), plain.data(), &first, sealed.ciphertext.data(),
                          static_cast<int>(sealed.ciphertext.size())) == 1 &&
        EVP_DecryptFinal_ex(contexts.cipher.get(), plain.data() + first, &last) == 1) {
        opened.text.assign(plain.begin(), plain.begin() + first + last);
    }
    return opened;
}

TEST(TicketKeys, WhatOneKeySealsItOpensWithTheSameMac) {
    TicketKeys keys(3600s);
    const auto start = TicketKeys::Clock::now();
    const auto sealed = seal(keys, "a session's state", start);
    ASSERT_EQ(sealed.result, 1);

    const auto opened = open(keys, sealed, start + 10min);
    EXPECT_EQ(opened.result, 1);
    EXPECT_TRUE(opened.mac_matches);
    EXPECT_EQ(opened.text, "a session's state");

    // Each ticket gets an IV of its own under the same key.
    const auto second = seal(keys, "a session's state", start + 10min);
    EXPECT_EQ(second.name, sealed.name);
    EXPECT_NE(second.iv, sealed.iv);
    EXPECT_NE(second.ciphertext, sealed.ciphertext);
}

TEST(TicketKeys, AKeySealsForOneLifetimeAndOpensForOneMore) {
    TicketKeys keys(3600s);
    const auto start = TicketKeys::Clock::now();
    const auto first = seal(keys, "first", start);
    ASSERT_EQ(first.result, 1);
    EXPECT_EQ(seal(keys, "x", start + 3599s).name, first.name);

    // One lifetime on, a new key seals; the old one still opens, asking for
    // a ticket under the new one (2).
    const auto second = seal(keys, "second", start + 3600s);
    ASSERT_EQ(second.result, 1);
    EXPECT_NE(second.name, first.name);
    const auto old = open(keys, first, start + 3600s);
    EXPECT_EQ(old.result, 2);
    EXPECT_TRUE(old.mac_matches);
    EXPECT_EQ(old.text, "first");
    EXPECT_EQ(open(keys, second, start + 3600s).result, 1);

    // Two lifetimes after it was made, the first key is gone.
    EXPECT_EQ(open(keys, first, start + 7199s).result, 2);
    EXPECT_EQ(open(keys, first, start + 7200s).result, 0);
    EXPECT_EQ(open(keys, second, start + 7200s).result, 2);
}

TEST(TicketKeys, AfterALongQuietSpellNoOldKeyOpens) {
    TicketKeys keys(60s);
    const auto start = TicketKeys::Clock::now();
    const auto sealed = seal(keys, "state", start);
    ASSERT_EQ(sealed.result, 1);
    const auto later = start + 10min;
    EXPECT_EQ(open(keys, sealed, later).result, 0);
    const auto fresh = seal(keys, "state", later);
    ASSERT_EQ(fresh.result, 1);
    EXPECT_NE(fresh.name, sealed.name);
}

TEST(TicketKeys, UnknownNameIsNotOpened) {
    TicketKeys keys(3600s);
    const auto start = TicketKeys::Clock::now();
    auto sealed = seal(keys, "state", start);
    ASSERT_EQ(sealed.result, 1);
    sealed.name[0] ^= 0x01;
    EXPECT_EQ(open(keys, sealed, start).result, 0);
}

TEST(TicketKeys, TwoInstancesHaveKeysOfTheirOwn) {
    TicketKeys one(3600s);
    TicketKeys other(3600s);
    const auto now = TicketKeys::Clock::now();
    const auto sealed = seal(one, "state", now);
    ASSERT_EQ(sealed.result, 1);
    EXPECT_EQ(seal(other, "state", now).result, 1);
    EXPECT_EQ(open(other, sealed, now).result, 0);
}

// ---- still_allowed ----------------------------------------------------------

using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using StorePtr = std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)>;

X509Ptr certificate(const std::string& name) {
    std::unique_ptr<FILE, decltype(&std::fclose)> file(
        std::fopen(TestPki::file(name + ".crt").c_str(), "r"), std::fclose);
    if (!file) {
        return {nullptr, X509_free};
    }
    return {PEM_read_X509(file.get(), nullptr, nullptr, nullptr), X509_free};
}

StorePtr store(bool with_crl) {
    StorePtr made(X509_STORE_new(), X509_STORE_free);
    EXPECT_EQ(X509_STORE_load_file(made.get(), TestPki::file("ca.pem").c_str()), 1);
    if (with_crl) {
        X509_LOOKUP* lookup = X509_STORE_add_lookup(made.get(), X509_LOOKUP_file());
        EXPECT_EQ(X509_load_crl_file(lookup, TestPki::file("crl.pem").c_str(), X509_FILETYPE_PEM),
                  1);
        X509_STORE_set_flags(made.get(), X509_V_FLAG_CRL_CHECK);
    }
    return made;
}

const std::vector<AllowedClient> kClients = {
    {kPortal, Role::portal}, {kMonitor, Role::monitor}, {kRevoked, Role::portal}};

TEST(StillAllowed, ListedClientOfTheCaIsAllowed) {
    const auto portal = certificate("portal");
    ASSERT_TRUE(portal);
    EXPECT_TRUE(otpbox::api::still_allowed(store(true).get(), portal.get(), kClients));
}

TEST(StillAllowed, SubjectOffTheListIsNot) {
    const auto portal = certificate("portal");
    ASSERT_TRUE(portal);
    const std::vector<AllowedClient> others = {{kMonitor, Role::monitor}};
    EXPECT_FALSE(otpbox::api::still_allowed(store(true).get(), portal.get(), others));
}

TEST(StillAllowed, RevokedClientIsNotWithTheCrl) {
    const auto revoked = certificate("revoked");
    ASSERT_TRUE(revoked);
    EXPECT_FALSE(otpbox::api::still_allowed(store(true).get(), revoked.get(), kClients));
    EXPECT_TRUE(otpbox::api::still_allowed(store(false).get(), revoked.get(), kClients));
}

TEST(StillAllowed, CertificateOfAnotherCaIsNot) {
    // The intruder's subject is the portal's, from a CA the store lacks.
    const auto intruder = certificate("intruder");
    ASSERT_TRUE(intruder);
    EXPECT_FALSE(otpbox::api::still_allowed(store(true).get(), intruder.get(), kClients));
}

TEST(StillAllowed, CertificateExpiredSinceIsNot) {
    const auto portal = certificate("portal");
    ASSERT_TRUE(portal);
    auto checked = store(true);
    // The test PKI's certificates are valid for two days; three days on
    // (the CRL then expired too) the portal's is not.
    X509_VERIFY_PARAM_set_time(X509_STORE_get0_param(checked.get()),
                               std::time(nullptr) + 3 * 86400);
    EXPECT_FALSE(otpbox::api::still_allowed(checked.get(), portal.get(), kClients));
}

TEST(StillAllowed, CertificateWithoutClientUsageIsNot) {
    const auto server_only = certificate("server-only");
    ASSERT_TRUE(server_only);
    const std::vector<AllowedClient> listed = {
        {"CN=otpbox-server-only,O=otpbox development", Role::portal}};
    EXPECT_FALSE(otpbox::api::still_allowed(store(true).get(), server_only.get(), listed));
}

// ---- resumption against a server ---------------------------------------------

// One TLS connection as the portal (or another client of the test PKI),
// offering a kept session when it has one; it asks GET /echo once.
struct Visit {
    bool handshake = false;
    bool resumed = false;
    unsigned status = 0;
    std::string body;                      // the test server answers with the client's role
    std::shared_ptr<SSL_SESSION> session;  // what the server let the client keep
};

Visit visit(std::uint16_t port, const std::shared_ptr<SSL_SESSION>& offered, int version,
            const std::string& client = "portal") {
    net::io_context io;
    net::ssl::context context(net::ssl::context::tls_client);
    context.load_verify_file(TestPki::file("ca.pem"));
    context.use_certificate_chain_file(TestPki::file(client + ".crt"));
    context.use_private_key_file(TestPki::file(client + ".key"), net::ssl::context::pem);
    SSL_CTX_set_min_proto_version(context.native_handle(), version);
    SSL_CTX_set_max_proto_version(context.native_handle(), version);
    net::ssl::stream<net::ip::tcp::socket> stream(io, context);
    SSL* ssl = stream.native_handle();
    if (offered) {
        SSL_set_session(ssl, offered.get());
    }

    Visit result;
    boost::system::error_code error;
    stream.next_layer().connect({net::ip::make_address("127.0.0.1"), port}, error);
    stream.handshake(net::ssl::stream_base::client, error);
    if (error) {
        return result;
    }
    const std::string request = "GET /echo HTTP/1.1\r\nHost: localhost\r\n\r\n";
    net::write(stream, net::buffer(request), error);
    boost::beast::flat_buffer buffer;
    boost::beast::http::response<boost::beast::http::string_body> response;
    boost::beast::http::read(stream, buffer, response, error);
    // TLS 1.3 tickets come after the handshake; a read that failed may still
    // mean the server refused the client after it (TLS 1.3 sends its alert
    // then), so the handshake counts as passed only with an answer.
    if (error) {
        return result;
    }
    result.handshake = true;
    result.status = response.result_int();
    result.body = response.body();
    result.resumed = SSL_session_reused(ssl) == 1;
    SSL_SESSION* kept = SSL_get1_session(ssl);
    if (kept != nullptr && SSL_SESSION_is_resumable(kept) == 1) {
        result.session = std::shared_ptr<SSL_SESSION>(kept, SSL_SESSION_free);
    } else if (kept != nullptr) {
        SSL_SESSION_free(kept);
    }
    stream.shutdown(error);
    return result;
}

class SessionTicketServer : public ::testing::TestWithParam<int> {
  protected:
    void TearDown() override {
        if (m_server) {
            m_server->stop();
        }
        m_work.reset();
        m_io.stop();
        for (auto& thread : m_threads) {
            thread.join();
        }
    }

    static TlsConfig tls_config(std::chrono::seconds lifetime = 3600s) {
        TlsConfig tls;
        tls.ca_file = TestPki::file("ca.pem");
        tls.certificate_file = TestPki::file("server.crt");
        tls.key_file = TestPki::file("server.key");
        tls.clients = kClients;
        tls.ticket_lifetime = lifetime;
        return tls;
    }

    void start_server(const TlsConfig& tls) {
        m_server = std::make_unique<Server>(
            m_io, "127.0.0.1", 0, tls, otpbox::api::ServerLimits{},
            [](const otpbox::api::Request& request) {
                otpbox::api::Response response;
                response.body = request.role == Role::portal ? "portal" : "monitor";
                return response;
            });
        m_server->start();
        m_port = m_server->port();
        for (int i = 0; i < 2; ++i) {
            m_threads.emplace_back([this] { m_io.run(); });
        }
    }

    // A first visit in full that leaves a session to resume.
    std::shared_ptr<SSL_SESSION> first_session(const std::string& client = "portal") {
        const auto first = visit(m_port, nullptr, GetParam(), client);
        EXPECT_TRUE(first.handshake);
        EXPECT_FALSE(first.resumed);
        EXPECT_TRUE(first.session) << "no ticket came with the first handshake";
        return first.session;
    }

    net::io_context m_io;
    net::executor_work_guard<net::io_context::executor_type> m_work = net::make_work_guard(m_io);
    std::vector<std::thread> m_threads;
    std::unique_ptr<Server> m_server;
    std::uint16_t m_port = 0;
};

INSTANTIATE_TEST_SUITE_P(Versions, SessionTicketServer,
                         ::testing::Values(TLS1_3_VERSION, TLS1_2_VERSION),
                         [](const auto& version) {
                             return version.param == TLS1_3_VERSION ? "Tls13" : "Tls12";
                         });

TEST_P(SessionTicketServer, ClientResumesWithItsTicketAndIsCounted) {
    start_server(tls_config());
    const auto session = first_session();
    ASSERT_TRUE(session);

    const auto again = visit(m_port, session, GetParam());
    EXPECT_TRUE(again.handshake);
    EXPECT_TRUE(again.resumed);
    EXPECT_EQ(again.status, 200u);
    const auto counted = m_server->handshakes();
    EXPECT_EQ(counted.full, 1u);
    EXPECT_EQ(counted.resumed, 1u);
}

TEST_P(SessionTicketServer, WithoutTicketsEveryHandshakeIsFull) {
    start_server(tls_config(0s));
    const auto first = visit(m_port, nullptr, GetParam());
    ASSERT_TRUE(first.handshake);
    EXPECT_FALSE(first.session) << "a ticket came though tickets are off";
    EXPECT_EQ(m_server->handshakes().full, 1u);
    EXPECT_EQ(m_server->handshakes().resumed, 0u);
}

TEST_P(SessionTicketServer, TicketPastItsLifetimeGivesAFullHandshake) {
    start_server(tls_config(1s));
    const auto session = first_session();
    ASSERT_TRUE(session);
    std::this_thread::sleep_for(2100ms);

    const auto again = visit(m_port, session, GetParam());
    EXPECT_TRUE(again.handshake);
    EXPECT_FALSE(again.resumed);
    EXPECT_EQ(m_server->handshakes().full, 2u);
}

TEST_P(SessionTicketServer, AfterAReloadTheOldTicketGivesAFullHandshake) {
    start_server(tls_config());
    const auto session = first_session();
    ASSERT_TRUE(session);
    m_server->reload(tls_config());

    const auto again = visit(m_port, session, GetParam());
    EXPECT_TRUE(again.handshake);
    EXPECT_FALSE(again.resumed);
}

// A client taken off the allow-list, or revoked, cannot come back on a
// ticket it got before: the reload's new keys do not open it, and the full
// handshake refuses the client.
TEST_P(SessionTicketServer, ClientRemovedFromTheListCannotResume) {
    start_server(tls_config());
    const auto session = first_session();
    ASSERT_TRUE(session);
    auto without_portal = tls_config();
    without_portal.clients = {{kMonitor, Role::monitor}};
    m_server->reload(without_portal);

    const auto again = visit(m_port, session, GetParam());
    EXPECT_FALSE(again.handshake);
    EXPECT_EQ(m_server->handshakes().resumed, 0u);
}

TEST_P(SessionTicketServer, RevokedClientCannotResume) {
    start_server(tls_config());
    const auto session = first_session("revoked");
    ASSERT_TRUE(session);
    auto with_crl = tls_config();
    with_crl.crl_file = TestPki::file("crl.pem");
    m_server->reload(with_crl);

    EXPECT_FALSE(visit(m_port, session, GetParam(), "revoked").handshake);
    EXPECT_EQ(m_server->handshakes().resumed, 0u);
}

// The role comes from the certificate the ticket carries, as after a full
// handshake.
TEST_P(SessionTicketServer, ResumedClientKeepsItsOwnRole) {
    start_server(tls_config());
    const auto session = first_session("monitor");
    ASSERT_TRUE(session);
    const auto again = visit(m_port, session, GetParam(), "monitor");
    EXPECT_TRUE(again.resumed);
    EXPECT_EQ(again.body, "monitor");
}

}  // namespace
