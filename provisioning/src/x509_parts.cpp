#include "x509_parts.hpp"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <memory>
#include <vector>

#include "otpbox/gsm/gsm_alphabet.hpp"
#include "otpbox/provisioning/pki.hpp"

namespace otpbox::provisioning::detail {

namespace {

// The attributes of an RFC 2253 name as written: split at the commas that
// are not escaped, since "\," belongs to a value (RFC 2253 section 2.4).
std::vector<std::string_view> split_attributes(std::string_view text) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\\') {
            ++i;  // the escaped character is never a separator
        } else if (text[i] == ',') {
            parts.push_back(text.substr(start, i - start));
            start = i + 1;
        }
    }
    parts.push_back(text.substr(start));
    return parts;
}

bool is_hex_digit(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// RFC 2253 section 4 lets a reader take spaces around "," and "=", as
// `openssl x509 -subject` prints them by default ("CN = a, O = b"). A space
// a value must keep at its end is written "\ ".
std::string_view trim(std::string_view text) {
    const auto first = text.find_first_not_of(' ');
    if (first == std::string_view::npos) {
        return {};
    }
    std::size_t end = first;
    for (std::size_t i = first; i < text.size(); ++i) {
        if (text[i] == '\\' && i + 1 < text.size()) {
            ++i;
            end = i + 1;
        } else if (text[i] != ' ') {
            end = i + 1;
        }
    }
    return text.substr(first, end - first);
}

// RFC 2253 section 2.4: a backslash stands before a special character that
// is meant literally, or before the two hex digits of one byte ("\C3\84").
std::string unescape_value(std::string_view attribute, std::string_view value) {
    std::string out;
    for (std::size_t i = 0; i < value.size(); ++i) {
        if (value[i] != '\\') {
            out.push_back(value[i]);
        } else if (i + 1 == value.size()) {
            throw PkiError(std::string(attribute) +
                           " ends in a lone backslash (write \\\\ for one)");
        } else if (i + 2 < value.size() && is_hex_digit(value[i + 1]) &&
                   is_hex_digit(value[i + 2])) {
            out.push_back(
                static_cast<char>(std::stoi(std::string(value.substr(i + 1, 2)), nullptr, 16)));
            i += 2;
        } else {
            out.push_back(value[++i]);
        }
    }
    return out;
}

// Unicode's general categories Cc (controls) and Cf (format characters, such
// as U+202E RIGHT-TO-LEFT OVERRIDE or U+200B ZERO WIDTH SPACE), as
// DerivedGeneralCategory.txt of Unicode 15.0 lists them. They print as
// nothing or turn the text around them, so a subject holding one cannot be
// read back from the screen, the allow-list or the audit log as it is.
bool invisible(char32_t c) {
    constexpr std::pair<char32_t, char32_t> kRanges[] = {
        {0x0000, 0x001F},   {0x007F, 0x009F},   {0x00AD, 0x00AD},   {0x0600, 0x0605},
        {0x061C, 0x061C},   {0x06DD, 0x06DD},   {0x070F, 0x070F},   {0x0890, 0x0891},
        {0x08E2, 0x08E2},   {0x180E, 0x180E},   {0x200B, 0x200F},   {0x202A, 0x202E},
        {0x2060, 0x2064},   {0x2066, 0x206F},   {0xFEFF, 0xFEFF},   {0xFFF9, 0xFFFB},
        {0x110BD, 0x110BD}, {0x110CD, 0x110CD}, {0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3},
        {0x1D173, 0x1D17A}, {0xE0001, 0xE0001}, {0xE0020, 0xE007F}};
    return std::any_of(std::begin(kRanges), std::end(kRanges),
                       [c](const auto& range) { return c >= range.first && c <= range.second; });
}

std::string code_point_name(char32_t c) {
    char text[16];
    std::snprintf(text, sizeof text, "U+%04X", static_cast<unsigned>(c));
    return text;
}

void refuse_unreadable_value(std::string_view attribute, std::string_view value) {
    if (value.empty()) {
        throw PkiError(std::string(attribute) + " has no value");
    }
    const auto code_points = gsm::utf8_to_code_points(value);
    if (!code_points) {
        throw PkiError(std::string(attribute) + " is not valid UTF-8");
    }
    for (const char32_t c : *code_points) {
        if (invisible(c)) {
            throw PkiError(std::string(attribute) + " holds " + code_point_name(c) +
                           ", a control or invisible format character");
        }
    }
}

using ObjectPtr = std::unique_ptr<ASN1_OBJECT, OpensslDeleter<ASN1_OBJECT_free>>;

// The attribute type: a name OpenSSL knows ("CN", "commonName"), in any case
// ("cn"), since the allow-list keeps the name as certificates print it
// ("CN") whatever was typed; or an OID in dotted digits ("2.5.4.3").
ObjectPtr attribute_type(std::string_view type) {
    const std::string text(type);
    if (text.find_first_not_of("0123456789.") == std::string::npos) {
        ObjectPtr oid(OBJ_txt2obj(text.c_str(), 1));
        ERR_clear_error();
        if (!oid) {
            throw PkiError("\"" + text + "\" is no OID");
        }
        return oid;
    }
    if (const int nid = OBJ_txt2nid(text.c_str()); nid != NID_undef) {
        return ObjectPtr(OBJ_nid2obj(nid));
    }
    ERR_clear_error();
    int found = NID_undef;
    const auto known = [&](const char* name) {
        return name != nullptr && std::strlen(name) == text.size() &&
               std::equal(text.begin(), text.end(), name, [](char a, char b) {
                   return std::tolower(static_cast<unsigned char>(a)) ==
                          std::tolower(static_cast<unsigned char>(b));
               });
    };
    for (int nid = 1; nid < OBJ_new_nid(0); ++nid) {
        if (known(OBJ_nid2sn(nid)) || known(OBJ_nid2ln(nid))) {
            if (found != NID_undef && found != nid) {
                throw PkiError("the attribute type " + text + " is ambiguous: write " +
                               OBJ_nid2sn(found) + " or " + OBJ_nid2sn(nid));
            }
            found = nid;
        }
    }
    ERR_clear_error();
    if (found == NID_undef) {
        throw PkiError("unknown attribute type \"" + text + "\" (such as CN, O, OU, L, ST, C)");
    }
    return ObjectPtr(OBJ_nid2obj(found));
}

// How specific an attribute is, for the order check: the country is the
// broadest, a person's or host's own name the most specific. 0: no rank.
int specificity(int nid) {
    switch (nid) {
        case NID_domainComponent:
            return 1;
        case NID_countryName:
            return 2;
        case NID_stateOrProvinceName:
        case NID_localityName:
            return 3;
        case NID_organizationName:
            return 4;
        case NID_organizationalUnitName:
            return 5;
        case NID_commonName:
        case NID_pkcs9_emailAddress:
        case NID_userId:
        case NID_serialNumber:
        case NID_givenName:
        case NID_surname:
        case NID_title:
            return 6;
        default:
            return 0;
    }
}

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<std::size_t>(size));
}

struct FileCloser {
    void operator()(std::FILE* file) const noexcept { std::fclose(file); }
};

std::unique_ptr<std::FILE, FileCloser> open_for_reading(const std::filesystem::path& path) {
    std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
    if (!file) {
        throw PkiError("cannot read " + path.string());
    }
    return file;
}

}  // namespace

PkeyPtr generate_p256_key() {
    PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    check(key != nullptr, "generating a P-256 key");
    return key;
}

X509NamePtr parse_subject(std::string_view subject) {
    if (trim(subject).empty()) {
        throw PkiError("the subject is empty");
    }
    // Every attribute is read, in the order typed, before any is added, so
    // that the first problem named is the first one typed.
    struct Attribute {
        std::string_view type;
        ObjectPtr object;
        std::string value;
    };
    std::vector<Attribute> read;
    for (const auto attribute : split_attributes(subject)) {
        const auto written = trim(attribute);
        if (written.empty()) {
            throw PkiError("an empty attribute (two commas, or one at the start or end)");
        }
        const auto equals = written.find('=');
        if (equals == std::string_view::npos) {
            throw PkiError("\"" + std::string(written) + "\" is not TYPE=value");
        }
        const auto type = trim(written.substr(0, equals));
        if (type.empty()) {
            throw PkiError("\"" + std::string(written) + "\" has no attribute type");
        }
        auto object = attribute_type(type);
        auto value = unescape_value(type, trim(written.substr(equals + 1)));
        refuse_unreadable_value(type, value);
        read.push_back({type, std::move(object), std::move(value)});
    }

    X509NamePtr name(X509_NAME_new());
    check(name != nullptr, "X509_NAME_new");
    for (auto it = read.rbegin(); it != read.rend(); ++it) {
        if (X509_NAME_add_entry_by_OBJ(name.get(), it->object.get(), MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>(it->value.data()),
                                       static_cast<int>(it->value.size()), -1, 0) != 1) {
            // Such as a country that is not two letters: OpenSSL's reason
            // ("string too long") is readable once the attribute is named.
            const char* reason = ERR_reason_error_string(ERR_peek_last_error());
            ERR_clear_error();
            throw PkiError("the value of " + std::string(it->type) + " cannot be a certificate's" +
                           (reason != nullptr ? std::string(" (") + reason + ")" : ""));
        }
    }
    return name;
}

std::string canonical_subject(std::string_view subject) {
    return name_rfc2253(parse_subject(subject).get());
}

std::optional<std::string> reversed_order(const X509_NAME* name) {
    // In the printed order (the last entry first) each attribute should be
    // at most as specific as the broadest one before it.
    int broadest = 0;
    int broadest_nid = NID_undef;
    for (int i = X509_NAME_entry_count(name) - 1; i >= 0; --i) {
        const int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(X509_NAME_get_entry(name, i)));
        const int rank = specificity(nid);
        if (rank == 0) {
            continue;
        }
        if (broadest_nid != NID_undef && rank > broadest) {
            return std::string(OBJ_nid2sn(broadest_nid)) + " before " + OBJ_nid2sn(nid);
        }
        if (broadest_nid == NID_undef || rank < broadest) {
            broadest = rank;
            broadest_nid = nid;
        }
    }
    return std::nullopt;
}

std::string reversed_subject(const X509_NAME* name) {
    X509NamePtr reversed(X509_NAME_new());
    check(reversed != nullptr, "X509_NAME_new");
    for (int i = X509_NAME_entry_count(name) - 1; i >= 0; --i) {
        check(X509_NAME_add_entry(reversed.get(), X509_NAME_get_entry(name, i), -1, 0) == 1,
              "reversing a name");
    }
    return name_rfc2253(reversed.get());
}

X509ExtPtr make_extension(int nid, const std::string& value, X509* issuer, X509* subject) {
    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, issuer, subject, nullptr, nullptr, 0);
    X509ExtPtr extension(X509V3_EXT_nconf_nid(nullptr, &context, nid, value.c_str()));
    check(extension != nullptr, std::string("extension ") + OBJ_nid2sn(nid));
    return extension;
}

std::string private_key_pem(EVP_PKEY* key) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    check(bio != nullptr, "BIO_new");
    check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
          "writing a private key");
    return bio_text(bio.get());
}

std::string certificate_pem(X509* certificate) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    check(bio != nullptr, "BIO_new");
    check(PEM_write_bio_X509(bio.get(), certificate) == 1, "writing a certificate");
    return bio_text(bio.get());
}

PkeyPtr read_private_key(const std::filesystem::path& path) {
    const auto file = open_for_reading(path);
    PkeyPtr key(PEM_read_PrivateKey(file.get(), nullptr, nullptr, nullptr));
    check(key != nullptr, "reading " + path.string());
    return key;
}

X509Ptr read_certificate(const std::filesystem::path& path) {
    const auto file = open_for_reading(path);
    X509Ptr certificate(PEM_read_X509(file.get(), nullptr, nullptr, nullptr));
    check(certificate != nullptr, "reading " + path.string());
    return certificate;
}

std::string name_rfc2253(const X509_NAME* name) {
    const BioPtr bio(BIO_new(BIO_s_mem()));
    check(bio != nullptr, "printing a name");
    X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    const auto size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
}

}  // namespace otpbox::provisioning::detail
