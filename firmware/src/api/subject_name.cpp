#include "api/subject_name.hpp"

#include <openssl/bio.h>

#include <memory>
#include <stdexcept>

namespace otpbox::api {

namespace {

struct BioFree {
    void operator()(BIO* bio) const noexcept { BIO_free(bio); }
};

}  // namespace

std::string rfc2253_subject(const X509& certificate) {
    const std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
    if (!bio) {
        throw std::bad_alloc();
    }
    const X509_NAME* name = X509_get_subject_name(&certificate);
    if (X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) {
        throw std::runtime_error("cannot print a certificate subject");
    }
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
}

std::optional<Role> role_of(std::span<const AllowedClient> clients, std::string_view subject) {
    for (const auto& client : clients) {
        if (client.subject == subject) {
            return client.role;
        }
    }
    return std::nullopt;
}

}  // namespace otpbox::api
