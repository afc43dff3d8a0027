#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctime>
#include <filesystem>

#include "certificate_builder.hpp"
#include "file_io.hpp"
#include "otpbox/provisioning/pki.hpp"
#include "x509_parts.hpp"

namespace otpbox::provisioning {

namespace {

namespace fs = std::filesystem;
using detail::CertificateSpec;

// The CA outlives its leaves; the CA/Browser Forum's former 825-day ceiling
// bounds every certificate made here.
constexpr int kCaDays = 825;
constexpr int kLeafDays = 90;

struct Issuer {
    detail::X509Ptr certificate;
    detail::PkeyPtr key;
};

struct PairPaths {
    fs::path certificate;
    fs::path key;
};

CertificateSpec ca_spec(std::string_view subject) {
    return {std::string(subject),
            kCaDays,
            {{NID_basic_constraints, "critical,CA:TRUE"},
             {NID_key_usage, "critical,keyCertSign,cRLSign"},
             {NID_subject_key_identifier, "hash"}}};
}

CertificateSpec leaf_spec(std::string_view subject, std::string_view usage) {
    return {std::string(subject),
            kLeafDays,
            {{NID_basic_constraints, "critical,CA:FALSE"},
             {NID_key_usage, "critical,digitalSignature"},
             {NID_ext_key_usage, std::string(usage)},
             {NID_subject_key_identifier, "hash"},
             {NID_authority_key_identifier, "keyid:always"}}};
}

CertificateSpec server_spec() {
    auto spec = leaf_spec("CN=localhost", "serverAuth");
    spec.extensions.emplace_back(NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1");
    return spec;
}

// Development certificates are made again this long before they expire, so
// that an old .dev/ keeps working.
constexpr std::time_t kRenewBefore = 7 * 24 * 3600;

// The certificate is good for a week more and, when an issuer is named, was
// signed by it.
bool certificate_current(const fs::path& file, const Issuer* issuer) {
    try {
        const auto certificate = detail::read_certificate(file);
        std::time_t limit = std::time(nullptr) + kRenewBefore;
        const bool lasts = X509_cmp_time(X509_get0_notAfter(certificate.get()), &limit) > 0;
        const bool signed_by_issuer =
            issuer == nullptr ||
            X509_verify(certificate.get(), X509_get0_pubkey(issuer->certificate.get())) == 1;
        ERR_clear_error();
        return lasts && signed_by_issuer;
    } catch (const std::exception&) {
        return false;
    }
}

bool pair_current(const PairPaths& paths, const Issuer* issuer) {
    return fs::exists(paths.certificate) && fs::exists(paths.key) &&
           certificate_current(paths.certificate, issuer);
}

// The key goes first: a certificate without its key is made again next time.
void write_pair(const PairPaths& paths, X509* certificate, EVP_PKEY* key) {
    detail::write_file_atomically(paths.key, detail::private_key_pem(key), S_IRUSR | S_IWUSR);
    detail::write_file_atomically(paths.certificate, detail::certificate_pem(certificate),
                                  S_IRUSR | S_IWUSR | S_IRGRP | S_IROTH);
}

Issuer make_root(const CertificateSpec& spec) {
    auto key = detail::generate_p256_key();
    auto certificate = detail::issue_certificate(spec, key.get(), nullptr, nullptr);
    return {std::move(certificate), std::move(key)};
}

Issuer dev_ca(const PairPaths& paths, StepReport& report) {
    if (pair_current(paths, nullptr)) {
        report.push_back({paths.certificate.filename().string(), StepResult::present});
        return {detail::read_certificate(paths.certificate), detail::read_private_key(paths.key)};
    }
    auto ca = make_root(ca_spec(kDevCaSubject));
    write_pair(paths, ca.certificate.get(), ca.key.get());
    report.push_back({paths.certificate.filename().string(), StepResult::created});
    return ca;
}

void leaf(const PairPaths& paths, const CertificateSpec& spec, const Issuer& issuer,
          StepReport& report) {
    if (pair_current(paths, &issuer)) {
        report.push_back({paths.certificate.filename().string(), StepResult::present});
        return;
    }
    const auto key = detail::generate_p256_key();
    const auto certificate =
        detail::issue_certificate(spec, key.get(), issuer.certificate.get(), issuer.key.get());
    write_pair(paths, certificate.get(), key.get());
    report.push_back({paths.certificate.filename().string(), StepResult::created});
}

PairPaths pair_in(const fs::path& dir, std::string_view name, std::string_view extension) {
    const std::string base(name);
    return {dir / (base + std::string(extension)), dir / (base + ".key")};
}

}  // namespace

StepReport make_dev_pki(const fs::path& dir, DevPkiParts parts) {
    detail::make_directory(dir, S_IRWXU | S_IRGRP | S_IXGRP | S_IROTH | S_IXOTH);
    StepReport report;
    const auto ca = dev_ca(pair_in(dir, "ca", ".pem"), report);
    if (parts == DevPkiParts::all) {
        leaf(pair_in(dir, "server", ".crt"), server_spec(), ca, report);
    }
    leaf(pair_in(dir, "portal", ".crt"), leaf_spec(kPortalSubject, "clientAuth"), ca, report);
    leaf(pair_in(dir, "monitor", ".crt"), leaf_spec(kMonitorSubject, "clientAuth"), ca, report);

    // The intruder's CA is thrown away: nothing may ever trust it.
    const auto intruder = pair_in(dir, "intruder", ".crt");
    if (pair_current(intruder, nullptr)) {
        report.push_back({intruder.certificate.filename().string(), StepResult::present});
    } else {
        const auto throw_away = make_root(ca_spec(kIntruderCaSubject));
        leaf(intruder, leaf_spec(kIntruderSubject, "clientAuth"), throw_away, report);
    }
    return report;
}

bool dev_certificate_current(const fs::path& certificate, const fs::path& dir) {
    const auto ca = pair_in(dir, "ca", ".pem");
    try {
        const Issuer issuer{detail::read_certificate(ca.certificate),
                            detail::read_private_key(ca.key)};
        return fs::exists(certificate) && certificate_current(certificate, &issuer);
    } catch (const std::exception&) {
        return false;
    }
}

std::string sign_with_dev_ca(const fs::path& dir, std::string_view csr_pem) {
    const auto ca = pair_in(dir, "ca", ".pem");
    const Issuer issuer{detail::read_certificate(ca.certificate), detail::read_private_key(ca.key)};
    const detail::BioPtr bio(BIO_new_mem_buf(csr_pem.data(), static_cast<int>(csr_pem.size())));
    detail::check(bio != nullptr, "reading the request");
    const detail::X509ReqPtr request(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
    detail::check(request != nullptr, "reading the request");
    const detail::PkeyPtr key(X509_REQ_get_pubkey(request.get()));
    detail::check(key != nullptr, "the request's public key");
    detail::check(X509_REQ_verify(request.get(), key.get()) == 1, "the request's signature");
    const auto certificate = detail::issue_certificate(server_spec(), key.get(),
                                                       issuer.certificate.get(), issuer.key.get());
    return detail::certificate_pem(certificate.get());
}

}  // namespace otpbox::provisioning
