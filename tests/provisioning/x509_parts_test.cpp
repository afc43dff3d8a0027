// Subjects typed at the console (tls allow, tls csr) in RFC 2253 form: a
// portal's certificate may name an organisation with a comma, which RFC 2253
// 2.4 writes escaped.

#include "x509_parts.hpp"

#include <gtest/gtest.h>

#include <string>

#include "otpbox/provisioning/pki.hpp"

namespace otpbox::provisioning::detail {
namespace {

std::string text_of(const X509_NAME* name, int nid) {
    char buffer[256] = {};
    const int length = X509_NAME_get_text_by_NID(name, nid, buffer, sizeof(buffer));
    return length < 0 ? std::string("<none>")
                      : std::string(buffer, static_cast<std::size_t>(length));
}

TEST(X509Parts_Subject, AnEscapedCommaStaysInItsValue) {
    const auto name = parse_subject("CN=Meier\\, Dr.,O=Praxis Nord");
    EXPECT_EQ(X509_NAME_entry_count(name.get()), 2);
    EXPECT_EQ(text_of(name.get(), NID_commonName), "Meier, Dr.");
    EXPECT_EQ(text_of(name.get(), NID_organizationName), "Praxis Nord");
    // The allow-list compares this form with the client's certificate.
    EXPECT_EQ(name_rfc2253(name.get()), "CN=Meier\\, Dr.,O=Praxis Nord");
}

TEST(X509Parts_Subject, HexEscapesAreBytes) {
    const auto name = parse_subject("CN=a\\2Cb,O=\\C3\\84rzte");
    EXPECT_EQ(text_of(name.get(), NID_commonName), "a,b");
    EXPECT_EQ(text_of(name.get(), NID_organizationName), "\xC3\x84rzte");
}

TEST(X509Parts_Subject, PlainSubjectsAreUnchanged) {
    const auto name = parse_subject("CN=otpbox-portal,O=otpbox development");
    EXPECT_EQ(name_rfc2253(name.get()), "CN=otpbox-portal,O=otpbox development");
}

TEST(X509Parts_Subject, RefusesALoneBackslashAndEmptyAttributes) {
    EXPECT_THROW((void)parse_subject("CN=a\\"), PkiError);
    EXPECT_THROW((void)parse_subject("CN=a,,O=b"), PkiError);
}

}  // namespace
}  // namespace otpbox::provisioning::detail
