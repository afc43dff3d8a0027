#include <openssl/pem.h>

#include "openssl_handles.hpp"
#include "otpbox/provisioning/pki.hpp"
#include "x509_parts.hpp"

namespace otpbox::provisioning {

namespace {

std::string join(const std::vector<std::string>& parts) {
    std::string text;
    for (const auto& part : parts) {
        text += text.empty() ? "" : ",";
        text += part;
    }
    return text;
}

// RFC 2986 5.4.2: the subjectAltName travels as an extensionRequest attribute.
void add_subject_alt_names(X509_REQ* request, const std::vector<std::string>& sans) {
    detail::ExtStackPtr extensions(sk_X509_EXTENSION_new_null());
    detail::check(extensions != nullptr, "sk_X509_EXTENSION_new_null");
    auto extension = detail::make_extension(NID_subject_alt_name, join(sans), nullptr, nullptr);
    detail::check(sk_X509_EXTENSION_push(extensions.get(), extension.get()) > 0,
                  "adding subjectAltName");
    extension.release();  // now owned by the stack
    detail::check(X509_REQ_add_extensions(request, extensions.get()) == 1,
                  "adding the extension request");
}

}  // namespace

std::string make_csr(EVP_PKEY* key, std::string_view subject,
                     const std::vector<std::string>& sans) {
    detail::X509ReqPtr request(X509_REQ_new());
    detail::check(request != nullptr, "X509_REQ_new");
    detail::check(X509_REQ_set_version(request.get(), X509_REQ_VERSION_1) == 1, "CSR version");
    const auto name = detail::parse_subject(subject);
    detail::check(X509_REQ_set_subject_name(request.get(), name.get()) == 1, "CSR subject");
    detail::check(X509_REQ_set_pubkey(request.get(), key) == 1, "CSR public key");
    if (!sans.empty()) {
        add_subject_alt_names(request.get(), sans);
    }
    detail::check(X509_REQ_sign(request.get(), key, EVP_sha256()) > 0, "signing the CSR");

    detail::BioPtr bio(BIO_new(BIO_s_mem()));
    detail::check(bio != nullptr, "BIO_new");
    detail::check(PEM_write_bio_X509_REQ(bio.get(), request.get()) == 1, "writing the CSR");
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
}

}  // namespace otpbox::provisioning
