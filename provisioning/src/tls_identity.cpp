#include "otpbox/provisioning/tls_identity.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "file_io.hpp"
#include "openssl_handles.hpp"
#include "otpbox/hsm/tls_key.hpp"
#include "otpbox/provisioning/pki.hpp"
#include "x509_parts.hpp"

namespace otpbox::provisioning {

namespace {

constexpr std::string_view kDevServerSubject = "CN=localhost";

std::vector<std::uint8_t> public_key_der(X509* certificate) {
    unsigned char* der = nullptr;
    const int size = i2d_PUBKEY(X509_get0_pubkey(certificate), &der);
    if (size <= 0) {
        return {};
    }
    std::vector<std::uint8_t> bytes(der, der + size);
    OPENSSL_free(der);
    return bytes;
}

std::string read_text(const std::filesystem::path& file) {
    std::ifstream in(file);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// The first certificate in PEM text; null when there is none.
detail::X509Ptr first_certificate(std::string_view pem) {
    const detail::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    detail::X509Ptr certificate(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    ERR_clear_error();
    return certificate;
}

// The DER of the first certificate in PEM text; empty when there is none.
std::vector<std::uint8_t> first_certificate_der(std::string_view pem) {
    const auto certificate = first_certificate(pem);
    if (!certificate) {
        return {};
    }
    unsigned char* der = nullptr;
    const int size = i2d_X509(certificate.get(), &der);
    if (size <= 0) {
        return {};
    }
    std::vector<std::uint8_t> bytes(der, der + size);
    OPENSSL_free(der);
    return bytes;
}

}  // namespace

StepResult make_tls_key(hsm::Hsm& hsm, std::string_view label) {
    if (hsm.has_key(label)) {
        return StepResult::present;
    }
    hsm.generate_key_pair(label, hsm::KeyKind::ec_p256);
    return StepResult::created;
}

std::string make_tls_csr(std::shared_ptr<hsm::Hsm> hsm, std::string_view label,
                         std::string_view subject) {
    const auto name = detail::parse_subject(subject);
    const auto key = hsm::hsm_private_key(std::move(hsm), label);
    return hsm::make_csr_pem(*key, *name);
}

bool certificate_fits_key(hsm::Hsm& hsm, std::string_view label, std::string_view certificate_pem) {
    const auto certificate = first_certificate(certificate_pem);
    if (!certificate || !hsm.has_key(label)) {
        return false;
    }
    return public_key_der(certificate.get()) == hsm.public_key_der(label);
}

StepResult store_tls_certificate(hsm::Hsm& hsm, std::string_view label,
                                 std::string_view certificate_pem) {
    const auto der = first_certificate_der(certificate_pem);
    if (der.empty()) {
        throw std::invalid_argument("no certificate to keep in the token");
    }
    if (hsm.stored_certificate(label) == der) {
        return StepResult::present;
    }
    hsm.store_certificate(label, der);
    return StepResult::created;
}

StepReport make_dev_tls_identity(std::shared_ptr<hsm::Hsm> hsm, std::string_view label,
                                 const std::filesystem::path& certificate_file,
                                 const std::filesystem::path& pki_dir) {
    StepReport report;
    report.push_back({std::string(label), make_tls_key(*hsm, label)});
    const auto name = certificate_file.filename().string();
    if (std::filesystem::exists(certificate_file) &&
        certificate_fits_key(*hsm, label, read_text(certificate_file)) &&
        dev_certificate_current(certificate_file, pki_dir)) {
        report.push_back({name, StepResult::present});
    } else {
        const auto certificate =
            sign_with_dev_ca(pki_dir, make_tls_csr(hsm, label, kDevServerSubject));
        detail::write_file_atomically(certificate_file, certificate,
                                      S_IRUSR | S_IWUSR | S_IRGRP | S_IROTH);
        report.push_back({name, StepResult::created});
    }
    report.push_back({std::string(label) + " certificate",
                      store_tls_certificate(*hsm, label, read_text(certificate_file))});
    return report;
}

}  // namespace otpbox::provisioning
