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

// The message of the PkiError parse_subject throws, "accepted" when none.
std::string refusal(std::string_view subject) {
    try {
        (void)parse_subject(subject);
    } catch (const PkiError& error) {
        return error.what();
    }
    return "accepted";
}

// otpboxd compares the client certificate's subject as RFC 2253 prints it,
// bytes above 0x7f escaped: the console must store that form, not what was
// typed, or a subject with an umlaut never matches.
TEST(X509Parts_Subject, TheCanonicalFormIsTheOneCertificatesPrint) {
    EXPECT_EQ(canonical_subject("CN=\xC3\x84rzte-portal,O=otpbox development"),
              "CN=\\C3\\84rzte-portal,O=otpbox development");
    EXPECT_EQ(canonical_subject("CN=\\C3\\84rzte-portal,O=otpbox development"),
              "CN=\\C3\\84rzte-portal,O=otpbox development");
    // Attribute types in any case, and the spaces openssl's default output has.
    EXPECT_EQ(canonical_subject("cn=portal,o=Example"), "CN=portal,O=Example");
    EXPECT_EQ(canonical_subject("commonName = portal, O = Example GmbH"),
              "CN=portal,O=Example GmbH");
    EXPECT_EQ(canonical_subject("2.5.4.3=portal"), "CN=portal");
    // A space a value keeps at its end is escaped, and stays.
    EXPECT_EQ(canonical_subject("CN=portal\\ ,O=x"), "CN=portal\\ ,O=x");
    EXPECT_EQ(canonical_subject("CN=a\\,b"), "CN=a\\,b");
}

TEST(X509Parts_Subject, RefusesWithAMessageThatNamesTheProblem) {
    const struct {
        std::string subject;
        std::string says;
    } cases[] = {
        {", O=", "an empty attribute"},
        {"CN=portal,O=", "O has no value"},
        {"CN", "\"CN\" is not TYPE=value"},
        {"=portal", "has no attribute type"},
        {"XYZ=portal", "unknown attribute type \"XYZ\""},
        {"C=Germany", "the value of C cannot be a certificate's"},
        {"CN=a\xE2\x80\xAE"
         "b,O=x",
         "U+202E"},  // RIGHT-TO-LEFT OVERRIDE
        {"CN=a\xE2\x80\x8B"
         "b",
         "U+200B"},  // ZERO WIDTH SPACE
        {"CN=a\\07b", "U+0007"},
        {"CN=a\\C2\\85b", "U+0085"},
        {"CN=a\\C3", "not valid UTF-8"},
        {"   ", "the subject is empty"},
    };
    for (const auto& c : cases) {
        const auto message = refusal(c.subject);
        EXPECT_NE(message.find(c.says), std::string::npos) << c.subject << ": " << message;
        // OpenSSL's own error texts ("DSO support routines") help no one here.
        EXPECT_EQ(message.find("routines"), std::string::npos) << c.subject << ": " << message;
    }
    EXPECT_EQ(refusal("CN=\xC3\x84rzte"), "accepted");
}

// RFC 2253 prints the most specific attribute first: "O=x,CN=y" is a
// certificate made the other way round, most often a slip.
TEST(X509Parts_Subject, ReversedOrderIsNamed) {
    const auto reversed = parse_subject("O=otpbox development,CN=portal");
    EXPECT_EQ(reversed_order(reversed.get()), "O before CN");
    EXPECT_EQ(reversed_subject(reversed.get()), "CN=portal,O=otpbox development");
    EXPECT_EQ(reversed_order(parse_subject("C=DE,O=Example,CN=portal").get()), "C before O");
    for (const auto* usual :
         {"CN=portal,OU=IT,O=Example,L=Berlin,ST=Berlin,C=DE", "CN=portal,DC=example,DC=net",
          "CN=portal", "emailAddress=a@b,CN=x", "CN=portal,1.2.3.4=x,O=Example"}) {
        EXPECT_EQ(reversed_order(parse_subject(usual).get()), std::nullopt) << usual;
    }
}

}  // namespace
}  // namespace otpbox::provisioning::detail
