#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "otpbox/provisioning/pki.hpp"
#include "test_support.hpp"

namespace {

namespace fs = std::filesystem;
namespace prov = otpbox::provisioning;
using otpbox::test::TempDir;

struct X509Free {
    void operator()(X509* certificate) const noexcept { X509_free(certificate); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

X509Ptr load(const fs::path& path) {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                         &std::fclose);
    if (!file) {
        return nullptr;
    }
    return X509Ptr(PEM_read_X509(file.get(), nullptr, nullptr, nullptr));
}

// X509_verify_cert of leaf against ca alone, for any purpose.
bool verifies(X509* ca, X509* leaf) {
    std::unique_ptr<X509_STORE, void (*)(X509_STORE*)> store(X509_STORE_new(), &X509_STORE_free);
    X509_STORE_add_cert(store.get(), ca);
    std::unique_ptr<X509_STORE_CTX, void (*)(X509_STORE_CTX*)> context(X509_STORE_CTX_new(),
                                                                       &X509_STORE_CTX_free);
    X509_STORE_CTX_init(context.get(), store.get(), leaf, nullptr);
    return X509_verify_cert(context.get()) == 1;
}

const char* const kFiles[] = {"ca.pem",       "ca.key",      "server.crt",  "server.key",
                              "portal.crt",   "portal.key",  "monitor.crt", "monitor.key",
                              "intruder.crt", "intruder.key"};

}  // namespace

TEST(DevPki_FirstRun, CreatesEveryFile) {
    TempDir dir;
    const auto report = prov::make_dev_pki(dir.path());
    ASSERT_EQ(report.size(), 5u);
    for (const auto& line : report) {
        EXPECT_EQ(line.result, prov::StepResult::created) << line.item;
    }
    for (const char* name : kFiles) {
        EXPECT_TRUE(fs::exists(dir.path() / name)) << name;
    }
}

TEST(DevPki_Keys, AreReadableByTheOwnerOnly) {
    TempDir dir;
    (void)prov::make_dev_pki(dir.path());
    for (const char* name : {"ca.key", "server.key", "portal.key", "monitor.key", "intruder.key"}) {
        struct stat info {};
        ASSERT_EQ(::stat((dir.path() / name).c_str(), &info), 0) << name;
        EXPECT_EQ(info.st_mode & 0777, 0600u) << name;
    }
}

TEST(DevPki_Chain, LeavesVerifyAgainstTheDevCa) {
    TempDir dir;
    (void)prov::make_dev_pki(dir.path());
    const auto ca = load(dir.path() / "ca.pem");
    ASSERT_TRUE(ca);
    for (const char* name : {"server.crt", "portal.crt", "monitor.crt"}) {
        const auto leaf = load(dir.path() / name);
        ASSERT_TRUE(leaf) << name;
        EXPECT_TRUE(verifies(ca.get(), leaf.get())) << name;
    }
}

TEST(DevPki_Intruder, DoesNotVerifyAgainstTheDevCa) {
    TempDir dir;
    (void)prov::make_dev_pki(dir.path());
    const auto ca = load(dir.path() / "ca.pem");
    const auto intruder = load(dir.path() / "intruder.crt");
    ASSERT_TRUE(ca);
    ASSERT_TRUE(intruder);
    EXPECT_FALSE(verifies(ca.get(), intruder.get()));
}

TEST(DevPki_Server, CarriesTheLoopbackNames) {
    TempDir dir;
    (void)prov::make_dev_pki(dir.path());
    const auto server = load(dir.path() / "server.crt");
    ASSERT_TRUE(server);
    EXPECT_EQ(X509_check_host(server.get(), "localhost", 0, 0, nullptr), 1);
    EXPECT_EQ(X509_check_ip_asc(server.get(), "127.0.0.1", 0), 1);
    EXPECT_EQ(X509_check_ip_asc(server.get(), "::1", 0), 1);
    EXPECT_NE(X509_check_host(server.get(), "example.org", 0, 0, nullptr), 1);
    EXPECT_EQ(X509_check_purpose(server.get(), X509_PURPOSE_SSL_SERVER, 0), 1);
}

TEST(DevPki_SecondRun, CreatesNothingAndChangesNothing) {
    TempDir dir;
    (void)prov::make_dev_pki(dir.path());
    std::map<std::string, std::pair<std::string, fs::file_time_type>> before;
    for (const char* name : kFiles) {
        before[name] = {otpbox::test::read_file(dir.path() / name),
                        fs::last_write_time(dir.path() / name)};
    }
    const auto report = prov::make_dev_pki(dir.path());
    for (const auto& line : report) {
        EXPECT_EQ(line.result, prov::StepResult::present) << line.item;
    }
    for (const char* name : kFiles) {
        EXPECT_EQ(otpbox::test::read_file(dir.path() / name), before[name].first) << name;
        EXPECT_EQ(fs::last_write_time(dir.path() / name), before[name].second) << name;
    }
}

TEST(DevPki_MissingKey, RemakesOnlyThatPair) {
    TempDir dir;
    (void)prov::make_dev_pki(dir.path());
    const auto ca_before = otpbox::test::read_file(dir.path() / "ca.pem");
    fs::remove(dir.path() / "portal.key");
    const auto report = prov::make_dev_pki(dir.path());
    for (const auto& line : report) {
        const auto want =
            line.item == "portal.crt" ? prov::StepResult::created : prov::StepResult::present;
        EXPECT_EQ(line.result, want) << line.item;
    }
    EXPECT_EQ(otpbox::test::read_file(dir.path() / "ca.pem"), ca_before);
    const auto ca = load(dir.path() / "ca.pem");
    const auto portal = load(dir.path() / "portal.crt");
    EXPECT_TRUE(verifies(ca.get(), portal.get()));
}

TEST(DevPki_Renewal, ACertificateAboutToExpireIsMadeAgain) {
    TempDir dir;
    (void)prov::make_dev_pki(dir.path());
    const auto pki = [&](const char* name) { return "'" + (dir.path() / name).string() + "'"; };
    // The portal's certificate replaced by one of the same CA for 3 days.
    const auto result =
        otpbox::test::run_command("openssl req -new -key " + pki("portal.key") +
                                  " -subj '/CN=otpbox-portal' 2>/dev/null |"
                                  " openssl x509 -req -CA " +
                                  pki("ca.pem") + " -CAkey " + pki("ca.key") +
                                  " -set_serial 77 -days 3 -out " + pki("portal.crt") + " 2>&1");
    ASSERT_EQ(result.status, 0) << result.output;
    EXPECT_FALSE(prov::dev_certificate_current(dir.path() / "portal.crt", dir.path()));
    EXPECT_TRUE(prov::dev_certificate_current(dir.path() / "monitor.crt", dir.path()));

    const auto report = prov::make_dev_pki(dir.path());
    for (const auto& line : report) {
        const auto want =
            line.item == "portal.crt" ? prov::StepResult::created : prov::StepResult::present;
        EXPECT_EQ(line.result, want) << line.item;
    }
    EXPECT_TRUE(prov::dev_certificate_current(dir.path() / "portal.crt", dir.path()));
}

TEST(DevPki_Renewal, ANewCaHasEveryLeafMadeAgain) {
    TempDir dir;
    (void)prov::make_dev_pki(dir.path());
    fs::remove(dir.path() / "ca.key");
    const auto report = prov::make_dev_pki(dir.path());
    for (const auto& line : report) {
        const auto want =
            line.item == "intruder.crt" ? prov::StepResult::present : prov::StepResult::created;
        EXPECT_EQ(line.result, want) << line.item;
    }
    const auto ca = load(dir.path() / "ca.pem");
    for (const auto* leaf : {"server.crt", "portal.crt", "monitor.crt"}) {
        EXPECT_TRUE(verifies(ca.get(), load(dir.path() / leaf).get())) << leaf;
    }
}

TEST(Csr_Make, CarriesSubjectAndSans) {
    std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> key(
        EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), &EVP_PKEY_free);
    ASSERT_TRUE(key);
    const auto pem = prov::make_csr(key.get(), "CN=localhost,O=otpbox", {"DNS:localhost"});
    std::unique_ptr<BIO, void (*)(BIO*)> bio(BIO_new_mem_buf(pem.data(), int(pem.size())),
                                             &BIO_free_all);
    std::unique_ptr<X509_REQ, void (*)(X509_REQ*)> request(
        PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr), &X509_REQ_free);
    ASSERT_TRUE(request);
    EXPECT_EQ(X509_REQ_verify(request.get(), key.get()), 1);
    char cn[64] = {};
    X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(request.get()), NID_commonName, cn,
                              sizeof cn);
    EXPECT_STREQ(cn, "localhost");
    std::unique_ptr<STACK_OF(X509_EXTENSION), void (*)(STACK_OF(X509_EXTENSION)*)> extensions(
        X509_REQ_get_extensions(request.get()), [](STACK_OF(X509_EXTENSION) * stack) {
            sk_X509_EXTENSION_pop_free(stack, X509_EXTENSION_free);
        });
    ASSERT_TRUE(extensions);
    EXPECT_GE(X509v3_get_ext_by_NID(extensions.get(), NID_subject_alt_name, -1), 0);
}

TEST(Csr_Make, RejectsAMalformedSubject) {
    std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> key(
        EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), &EVP_PKEY_free);
    EXPECT_THROW((void)prov::make_csr(key.get(), "localhost", {}), prov::PkiError);
}
