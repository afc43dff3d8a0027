#include "x509_parts.hpp"

#include <openssl/pem.h>

#include <cstdio>
#include <memory>
#include <vector>

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

// RFC 2253 section 2.4: a backslash stands before a special character that
// is meant literally, or before the two hex digits of one byte ("\C3\84").
std::string unescape_value(std::string_view value) {
    std::string out;
    for (std::size_t i = 0; i < value.size(); ++i) {
        if (value[i] != '\\') {
            out.push_back(value[i]);
        } else if (i + 1 == value.size()) {
            throw PkiError("subject value ends in a lone backslash: " + std::string(value));
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
    X509NamePtr name(X509_NAME_new());
    check(name != nullptr, "X509_NAME_new");
    const auto attributes = split_attributes(subject);
    for (auto it = attributes.rbegin(); it != attributes.rend(); ++it) {
        const auto equals = it->find('=');
        if (equals == std::string_view::npos || equals == 0) {
            throw PkiError("subject attribute without a value: " + std::string(*it));
        }
        const std::string type(it->substr(0, equals));
        const std::string value = unescape_value(it->substr(equals + 1));
        check(X509_NAME_add_entry_by_txt(name.get(), type.c_str(), MBSTRING_UTF8,
                                         reinterpret_cast<const unsigned char*>(value.c_str()), -1,
                                         -1, 0) == 1,
              "subject attribute " + type);
    }
    return name;
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
