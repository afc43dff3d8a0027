#include <openssl/crypto.h>

#include <algorithm>
#include <array>
#include <functional>
#include <optional>

#include "certificate_fields.hpp"
#include "key_info.hpp"
#include "otpbox/hsm/error.hpp"
#include "otpbox/hsm/hsm.hpp"
#include "pair_template.hpp"
#include "public_key.hpp"
#include "secret_template.hpp"
#include "session_pool.hpp"

namespace otpbox::hsm {

namespace {

constexpr std::size_t kGcmIvBytes = 12;
constexpr std::size_t kGcmTagBytes = 16;
constexpr std::size_t kHmacBytes = 32;
constexpr std::size_t kKeyIdBytes = 8;
constexpr CK_ULONG kMaxListedObjects = 256;

std::vector<std::uint8_t> copy_of(std::span<const std::uint8_t> bytes) {
    return {bytes.begin(), bytes.end()};
}

struct MacJob {
    std::vector<std::uint8_t> data;
    std::vector<std::uint8_t> mac = std::vector<std::uint8_t>(kHmacBytes);
};

struct GcmJob {
    std::vector<std::uint8_t> iv;
    std::vector<std::uint8_t> input;
    std::vector<std::uint8_t> aad;
    std::vector<std::uint8_t> output;
    CK_GCM_PARAMS params{};
    bool tag_failed = false;

    ~GcmJob() { OPENSSL_cleanse(output.data(), output.size()); }

    // Both readings of the IV length: PKCS#11 2.40 (ulIvLen) and 3.0
    // (ulIvBits), so that modules of either version take it. The parameter
    // length is that of this whole structure, which SoftHSM2 2.6 checks.
    CK_MECHANISM mechanism() {
        params.pIv = iv.data();
        params.ulIvLen = iv.size();
        params.ulIvBits = iv.size() * 8;
        params.pAAD = aad.data();
        params.ulAADLen = aad.size();
        params.ulTagBits = kGcmTagBytes * 8;
        return {CKM_AES_GCM, &params, sizeof(params)};
    }
};

// A failed tag check: CKR_ENCRYPTED_DATA_INVALID by PKCS#11 v2.40 2.12.3,
// CKR_GENERAL_ERROR or CKR_FUNCTION_FAILED from SoftHSM2 2.6.
bool is_tag_failure(CK_RV rv) {
    return rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED;
}

// More than one object of a label and class is never picked from: which one
// a lookup finds first is up to the module, so two processes could use two
// different keys under one name.
constexpr CK_ULONG kMaxLabelled = 8;

// The objects of that label (and class, when given), up to kMaxLabelled.
CK_RV find_labelled(CK_FUNCTION_LIST& fn, CK_SESSION_HANDLE session, std::string& label,
                    std::optional<CK_OBJECT_CLASS> wanted, std::vector<CK_OBJECT_HANDLE>& found) {
    CK_OBJECT_CLASS object_class = wanted.value_or(0);
    CK_ATTRIBUTE query[] = {{CKA_LABEL, label.data(), label.size()},
                            {CKA_CLASS, &object_class, sizeof object_class}};
    CK_RV rv = fn.C_FindObjectsInit(session, query, wanted ? 2 : 1);
    if (rv != CKR_OK) {
        return rv;
    }
    found.resize(kMaxLabelled);
    CK_ULONG count = 0;
    rv = fn.C_FindObjects(session, found.data(), found.size(), &count);
    fn.C_FindObjectsFinal(session);
    found.resize(rv == CKR_OK ? count : 0);
    return rv;
}

// Whether two of the objects are of one class (a key pair's halves and its
// certificate share a label, but each has a class of its own).
CK_RV share_a_class(CK_FUNCTION_LIST& fn, CK_SESSION_HANDLE session,
                    const std::vector<CK_OBJECT_HANDLE>& objects, bool& shared) {
    std::vector<CK_OBJECT_CLASS> classes(objects.size());
    for (std::size_t i = 0; i < objects.size(); ++i) {
        CK_ATTRIBUTE read{CKA_CLASS, &classes[i], sizeof(CK_OBJECT_CLASS)};
        const CK_RV rv = fn.C_GetAttributeValue(session, objects[i], &read, 1);
        if (rv != CKR_OK) {
            return rv;
        }
    }
    std::sort(classes.begin(), classes.end());
    shared = std::adjacent_find(classes.begin(), classes.end()) != classes.end();
    return CKR_OK;
}

std::string more_than_one(std::string_view label) {
    return "more than one object in the token is labelled " + std::string(label) +
           "; none of them is used until all but one are removed";
}

class Pkcs11Hsm final : public Hsm {
  public:
    explicit Pkcs11Hsm(const HsmConfig& config)
        : m_pool(config), m_call_timeout(config.call_timeout) {}

    std::vector<std::uint8_t> random_bytes(std::size_t count) override {
        auto bytes = std::make_shared<std::vector<std::uint8_t>>(count);
        run("C_GenerateRandom", [bytes](CK_FUNCTION_LIST& fn, CK_SESSION_HANDLE session) {
            return fn.C_GenerateRandom(session, bytes->data(), bytes->size());
        });
        return *bytes;
    }

    std::vector<std::uint8_t> hmac_sha256(std::string_view key_label,
                                          std::span<const std::uint8_t> data) override {
        auto job = std::make_shared<MacJob>();
        job->data = copy_of(data);
        with_key(key_label, "HMAC-SHA256",
                 [job](CK_FUNCTION_LIST& fn, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key) {
                     CK_MECHANISM mechanism{CKM_SHA256_HMAC, nullptr, 0};
                     CK_RV rv = fn.C_SignInit(session, &mechanism, key);
                     if (rv != CKR_OK) {
                         return rv;
                     }
                     CK_ULONG length = job->mac.size();
                     rv = fn.C_Sign(session, job->data.data(), job->data.size(), job->mac.data(),
                                    &length);
                     job->mac.resize(length);
                     return rv;
                 });
        return job->mac;
    }

    bool hmac_sha256_verify(std::string_view key_label, std::span<const std::uint8_t> data,
                            std::span<const std::uint8_t> mac) override {
        const auto expected = hmac_sha256(key_label, data);
        return expected.size() == mac.size() &&
               CRYPTO_memcmp(expected.data(), mac.data(), mac.size()) == 0;
    }

    std::vector<std::uint8_t> aes_gcm_encrypt(
        std::string_view key_label, std::span<const std::uint8_t> plaintext,
        std::span<const std::uint8_t> associated_data) override;

    std::optional<SecureBytes> aes_gcm_decrypt(
        std::string_view key_label, std::span<const std::uint8_t> sealed,
        std::span<const std::uint8_t> associated_data) override;

    bool has_key(std::string_view label) override { return find_key(label).has_value(); }

    std::vector<KeyInfo> list_keys() override;

    void generate_secret_key(std::string_view label, KeyKind kind) override {
        if (kind != KeyKind::hmac_sha256 && kind != KeyKind::aes_256) {
            throw HsmError(Fault::data, "generate_secret_key makes HMAC and AES keys only");
        }
        refuse_existing(label);
        auto key = std::make_shared<SecretTemplate>(label, kind, random_bytes(kKeyIdBytes));
        auto made = std::make_shared<CK_OBJECT_HANDLE>(CK_INVALID_HANDLE);
        run("C_GenerateKey", [key, made](CK_FUNCTION_LIST& fn, CK_SESSION_HANDLE session) {
            auto attributes = key->for_generate();
            CK_MECHANISM mechanism{key->generate_mechanism(), nullptr, 0};
            return fn.C_GenerateKey(session, &mechanism, attributes.data(), attributes.size(),
                                    made.get());
        });
        keep_only_if_alone(label, CKO_SECRET_KEY, {*made});
    }

    void import_secret_key(std::string_view label, KeyKind kind,
                           std::span<const std::uint8_t> value) override {
        refuse_existing(label);
        auto key = std::make_shared<SecretTemplate>(label, kind, random_bytes(kKeyIdBytes));
        auto secret = std::make_shared<std::vector<std::uint8_t>>(copy_of(value));
        run("C_CreateObject", [key, secret](CK_FUNCTION_LIST& fn, CK_SESSION_HANDLE session) {
            auto attributes = key->for_import(*secret);
            CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
            return fn.C_CreateObject(session, attributes.data(), attributes.size(), &handle);
        });
        OPENSSL_cleanse(secret->data(), secret->size());
    }

    void generate_key_pair(std::string_view label, KeyKind kind) override;
    std::vector<std::uint8_t> public_key_der(std::string_view label) override;
    std::vector<std::uint8_t> sign_with_private_key(std::string_view label,
                                                    std::span<const std::uint8_t> input) override;

    void store_certificate(std::string_view label, std::span<const std::uint8_t> der) override;
    std::optional<std::vector<std::uint8_t>> stored_certificate(std::string_view label) override;

    std::vector<CK_MECHANISM_TYPE> mechanisms() override;

    void set_overrun_listener(OverrunListener listener) override {
        m_pool.set_overrun_listener(std::move(listener));
    }

    // A stall is not looked into: a probe would only join the overrunning
    // calls, and health says so until they return.
    void look_for_token() override {
        if (const auto now = m_pool.health(); now.ok || now.state == "stalled") {
            return;
        }
        try {
            (void)random_bytes(1);
        } catch (const HsmError& error) {
            if (error.fault() == Fault::pin) {
                throw;
            }
        }
    }

    HsmHealth last_health() override { return m_pool.health(); }

    HsmHealth health() override {
        try {
            look_for_token();
        } catch (const HsmError&) {
        }
        return m_pool.health();
    }

  private:
    using Call = std::function<CK_RV(CK_FUNCTION_LIST&, CK_SESSION_HANDLE)>;
    using KeyCall = std::function<CK_RV(CK_FUNCTION_LIST&, CK_SESSION_HANDLE, CK_OBJECT_HANDLE)>;

    void refuse_existing(std::string_view label) {
        if (has_key(label)) {
            throw HsmError(Fault::data, "a key labelled " + std::string(label) + " exists");
        }
    }

    // The check before making a key is no lock: another process may have
    // made one of the same label meanwhile. Then the objects just made are
    // destroyed again and the caller told, so that one label never names
    // two keys (both makers may end up failing; trying again then works).
    void keep_only_if_alone(std::string_view label, CK_OBJECT_CLASS object_class,
                            std::vector<CK_OBJECT_HANDLE> made) {
        struct Check {
            std::string label;
            std::vector<CK_OBJECT_HANDLE> made;
            bool alone = true;
        };
        auto check = std::make_shared<Check>();
        check->label = std::string(label);
        check->made = std::move(made);
        run("checking the new key's label",
            [check, object_class](CK_FUNCTION_LIST& fn, CK_SESSION_HANDLE session) {
                std::vector<CK_OBJECT_HANDLE> found;
                const CK_RV rv = find_labelled(fn, session, check->label, object_class, found);
                check->alone = rv != CKR_OK || found.size() <= 1;
                return rv;
            });
        if (check->alone) {
            return;
        }
        run("C_DestroyObject", [check](CK_FUNCTION_LIST& fn, CK_SESSION_HANDLE session) {
            for (const auto object : check->made) {
                if (const CK_RV rv = fn.C_DestroyObject(session, object);
                    rv != CKR_OK && rv != CKR_OBJECT_HANDLE_INVALID) {
                    return rv;
                }
            }
            return static_cast<CK_RV>(CKR_OK);
        });
        throw HsmError(Fault::data, "another key labelled " + check->label +
                                        " was made at the same time; the one made here was "
                                        "destroyed again, nothing changed");
    }

    // One call on a pooled session, watched against the call timeout. A call
    // that overran gives a stalled error even when it returned well: its
    // caller may have been answered 503 meanwhile.
    CK_RV call_once(std::string_view what, Lease& lease, const Call& call) {
        auto& api = m_pool.api();
        const auto session = lease.handle();
        const auto outcome =
            m_pool.watch().run(session, lease.generation(), [&] { return call(api, session); });
        if (outcome.overran) {
            lease.mark_broken();
            throw HsmError(Fault::stalled, std::string(what) + " overran its deadline of " +
                                               std::to_string(m_call_timeout.count()) + " ms");
        }
        return outcome.rv;
    }

    // A dead session is dropped and the call tried once more on another;
    // a lost login is renewed once; a lost token drops everything and the
    // HSM reports itself unavailable until it is found again. Both name the
    // connection the call failed on, so a call that failed on an older one
    // neither drops nor logs in on a connection made since.
    void run(std::string_view what, const Call& call) {
        for (int attempt = 0;; ++attempt) {
            auto lease = m_pool.acquire();
            const CK_RV rv = call_once(what, lease, call);
            if (rv == CKR_OK) {
                return;
            }
            const auto fault = classify(rv);
            if (fault != Fault::data && fault != Fault::other) {
                lease.mark_broken();
            }
            if (fault == Fault::token_gone) {
                m_pool.disconnect(lease.generation(), std::string(what) + ": " + ckr_name(rv));
                throw HsmError(rv, std::string(what) + " failed: the HSM is unreachable (" +
                                       ckr_name(rv) + ")");
            }
            const bool retry = fault == Fault::not_logged_in || fault == Fault::session_lost;
            if (attempt == 0 && retry) {
                if (fault == Fault::not_logged_in) {
                    m_pool.login_again(lease.generation());
                }
                continue;
            }
            throw HsmError(rv, std::string(what) + " failed: " + ckr_name(rv));
        }
    }

    // The object of that label (and class, when given).
    std::optional<CK_OBJECT_HANDLE> find_key(std::string_view label,
                                             std::optional<CK_OBJECT_CLASS> wanted = {}) {
        const CK_ULONG cache_class = wanted.value_or(~0UL);  // ~0: any class
        if (auto cached = m_pool.cached_key(label, cache_class)) {
            return cached;
        }
        struct Lookup {
            std::string label;
            std::optional<CK_OBJECT_CLASS> wanted;
            std::optional<CK_OBJECT_HANDLE> found;
            bool ambiguous = false;
        };
        auto lookup = std::make_shared<Lookup>();
        lookup->label = std::string(label);
        lookup->wanted = wanted;
        const auto generation = m_pool.generation();
        run("finding a key", [lookup](CK_FUNCTION_LIST& fn, CK_SESSION_HANDLE session) {
            std::vector<CK_OBJECT_HANDLE> objects;
            CK_RV rv = find_labelled(fn, session, lookup->label, lookup->wanted, objects);
            if (rv != CKR_OK || objects.empty()) {
                return rv;
            }
            bool shared = false;
            if (objects.size() > 1) {
                rv = lookup->wanted ? CKR_OK : share_a_class(fn, session, objects, shared);
                shared = shared || lookup->wanted.has_value();
            }
            lookup->ambiguous = shared;
            if (!shared) {
                lookup->found = objects.front();
            }
            return rv;
        });
        if (lookup->ambiguous) {
            throw HsmError(Fault::data, more_than_one(label));
        }
        if (lookup->found) {
            m_pool.cache_key(label, cache_class, *lookup->found, generation);
        }
        return lookup->found;
    }

    void with_key(std::string_view label, std::string_view what, const KeyCall& call,
                  std::optional<CK_OBJECT_CLASS> wanted = {}) {
        for (int attempt = 0; attempt < 2; ++attempt) {
            const auto key = find_key(label, wanted);
            if (!key) {
                throw HsmError(Fault::missing_key, "no key labelled " + std::string(label));
            }
            try {
                run(what, [&call, handle = *key](CK_FUNCTION_LIST& fn, CK_SESSION_HANDLE session) {
                    return call(fn, session, handle);
                });
                return;
            } catch (const HsmError& error) {
                // A handle cached before the token came back: look it up again.
                const auto rv = static_cast<CK_RV>(error.code().value());
                if (attempt == 0 &&
                    (rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID)) {
                    m_pool.forget_keys();
                    continue;
                }
                throw;
            }
        }
    }

    SessionPool m_pool;
    std::chrono::milliseconds m_call_timeout;
};

std::vector<std::uint8_t> Pkcs11Hsm::aes_gcm_encrypt(
    std::string_view key_label, std::span<const std::uint8_t> plaintext,
    std::span<const std::uint8_t> associated_data) {
    if (associated_data.empty()) {
        throw HsmError(Fault::data, "AES-GCM needs associated data");
    }
    // A random 96-bit IV from the token for every message (NIST SP 800-38D
    // 8.2.2): under one key, below 2^32 messages a repeat stays negligible.
    auto job = std::make_shared<GcmJob>();
    job->iv = random_bytes(kGcmIvBytes);
    job->input = copy_of(plaintext);
    job->aad = copy_of(associated_data);
    job->output.resize(plaintext.size() + kGcmTagBytes);
    with_key(key_label, "AES-GCM encrypt",
             [job](CK_FUNCTION_LIST& fn, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key) {
                 auto mechanism = job->mechanism();
                 CK_RV rv = fn.C_EncryptInit(session, &mechanism, key);
                 if (rv != CKR_OK) {
                     return rv;
                 }
                 CK_ULONG length = job->output.size();
                 rv = fn.C_Encrypt(session, job->input.data(), job->input.size(),
                                   job->output.data(), &length);
                 job->output.resize(length);
                 return rv;
             });
    OPENSSL_cleanse(job->input.data(), job->input.size());
    auto sealed = job->iv;
    sealed.insert(sealed.end(), job->output.begin(), job->output.end());
    return sealed;
}

std::optional<SecureBytes> Pkcs11Hsm::aes_gcm_decrypt(
    std::string_view key_label, std::span<const std::uint8_t> sealed,
    std::span<const std::uint8_t> associated_data) {
    if (sealed.size() < kGcmIvBytes + kGcmTagBytes || associated_data.empty()) {
        return std::nullopt;
    }
    auto job = std::make_shared<GcmJob>();
    job->iv = copy_of(sealed.first(kGcmIvBytes));
    job->input = copy_of(sealed.subspan(kGcmIvBytes));
    job->aad = copy_of(associated_data);
    job->output.resize(job->input.size());
    with_key(key_label, "AES-GCM decrypt",
             [job](CK_FUNCTION_LIST& fn, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key) {
                 auto mechanism = job->mechanism();
                 CK_RV rv = fn.C_DecryptInit(session, &mechanism, key);
                 if (rv != CKR_OK) {
                     return rv;
                 }
                 CK_ULONG length = job->output.size();
                 rv = fn.C_Decrypt(session, job->input.data(), job->input.size(),
                                   job->output.data(), &length);
                 if (is_tag_failure(rv)) {
                     job->tag_failed = true;
                     return CKR_OK;
                 }
                 job->output.resize(length);
                 return rv;
             });
    if (job->tag_failed) {
        return std::nullopt;
    }
    return SecureBytes(job->output);
}

void Pkcs11Hsm::generate_key_pair(std::string_view label, KeyKind kind) {
    refuse_existing(label);
    auto pair = std::make_shared<PairTemplate>(label, kind, random_bytes(kKeyIdBytes));
    auto made = std::make_shared<std::array<CK_OBJECT_HANDLE, 2>>();
    made->fill(CK_INVALID_HANDLE);
    run("C_GenerateKeyPair", [pair, made](CK_FUNCTION_LIST& fn, CK_SESSION_HANDLE session) {
        auto public_attributes = pair->public_attributes();
        auto private_attributes = pair->private_attributes();
        CK_MECHANISM mechanism{pair->mechanism(), nullptr, 0};
        return fn.C_GenerateKeyPair(session, &mechanism, public_attributes.data(),
                                    public_attributes.size(), private_attributes.data(),
                                    private_attributes.size(), &(*made)[0], &(*made)[1]);
    });
    keep_only_if_alone(label, CKO_PRIVATE_KEY, {(*made)[0], (*made)[1]});
}

// Certificate objects of a label, at most a few (one after a replacement).
std::vector<CK_OBJECT_HANDLE> find_certificates(CK_FUNCTION_LIST& fn, CK_SESSION_HANDLE session,
                                                std::string& label, CK_RV& rv) {
    constexpr CK_ULONG kMaxCertificates = 8;
    CK_OBJECT_CLASS object_class = CKO_CERTIFICATE;
    CK_ATTRIBUTE query[] = {{CKA_LABEL, label.data(), label.size()},
                            {CKA_CLASS, &object_class, sizeof object_class}};
    std::vector<CK_OBJECT_HANDLE> handles(kMaxCertificates);
    CK_ULONG count = 0;
    rv = fn.C_FindObjectsInit(session, query, 2);
    if (rv != CKR_OK) {
        return {};
    }
    rv = fn.C_FindObjects(session, handles.data(), handles.size(), &count);
    fn.C_FindObjectsFinal(session);
    handles.resize(rv == CKR_OK ? count : 0);
    return handles;
}

void Pkcs11Hsm::store_certificate(std::string_view label, std::span<const std::uint8_t> der) {
    struct StoreJob {
        std::string label;
        CertificateFields fields;
        std::vector<std::uint8_t> value;
        std::vector<std::uint8_t> id = std::vector<std::uint8_t>(64);
    };
    auto job = std::make_shared<StoreJob>();
    job->label = std::string(label);
    job->fields = certificate_fields(der);
    job->value = copy_of(der);
    if (job->fields.public_key != public_key_der(label)) {
        throw HsmError(Fault::data, "the certificate is not for the key pair " + job->label);
    }
    with_key(
        label, "reading the key pair's CKA_ID",
        [job](CK_FUNCTION_LIST& fn, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key) {
            CK_ATTRIBUTE id{CKA_ID, job->id.data(), job->id.size()};
            const CK_RV rv = fn.C_GetAttributeValue(session, key, &id, 1);
            job->id.resize(rv == CKR_OK ? id.ulValueLen : 0);
            return rv;
        },
        CKO_PRIVATE_KEY);
    // The new object first, then the old ones go: a failure in between
    // leaves two certificates of the label, never none. A retry on another
    // session finds the one made here among the old ones.
    run("C_CreateObject (certificate)", [job](CK_FUNCTION_LIST& fn, CK_SESSION_HANDLE session) {
        CK_RV rv = CKR_OK;
        const auto old = find_certificates(fn, session, job->label, rv);
        if (rv != CKR_OK) {
            return rv;
        }
        CK_OBJECT_CLASS object_class = CKO_CERTIFICATE;
        CK_CERTIFICATE_TYPE type = CKC_X_509;
        CK_BBOOL yes = CK_TRUE;
        CK_BBOOL no = CK_FALSE;
        auto& fields = job->fields;
        CK_ATTRIBUTE attributes[] = {
            {CKA_CLASS, &object_class, sizeof object_class},
            {CKA_CERTIFICATE_TYPE, &type, sizeof type},
            {CKA_TOKEN, &yes, sizeof yes},
            {CKA_PRIVATE, &no, sizeof no},
            {CKA_MODIFIABLE, &no, sizeof no},
            {CKA_LABEL, job->label.data(), job->label.size()},
            {CKA_ID, job->id.data(), job->id.size()},
            {CKA_SUBJECT, fields.subject.data(), fields.subject.size()},
            {CKA_ISSUER, fields.issuer.data(), fields.issuer.size()},
            {CKA_SERIAL_NUMBER, fields.serial.data(), fields.serial.size()},
            {CKA_VALUE, job->value.data(), job->value.size()},
        };
        CK_OBJECT_HANDLE made = CK_INVALID_HANDLE;
        rv = fn.C_CreateObject(session, attributes, std::size(attributes), &made);
        if (rv != CKR_OK) {
            return rv;
        }
        for (const auto handle : old) {
            rv = fn.C_DestroyObject(session, handle);
            if (rv != CKR_OK) {
                return rv;
            }
        }
        return CKR_OK;
    });
}

std::optional<std::vector<std::uint8_t>> Pkcs11Hsm::stored_certificate(std::string_view label) {
    struct ReadJob {
        std::string label;
        bool found = false;
        std::vector<std::uint8_t> value;
    };
    auto job = std::make_shared<ReadJob>();
    job->label = std::string(label);
    run("reading a certificate", [job](CK_FUNCTION_LIST& fn, CK_SESSION_HANDLE session) {
        CK_RV rv = CKR_OK;
        const auto handles = find_certificates(fn, session, job->label, rv);
        if (rv != CKR_OK || handles.empty()) {
            return rv;
        }
        CK_ATTRIBUTE value{CKA_VALUE, nullptr, 0};
        rv = fn.C_GetAttributeValue(session, handles.front(), &value, 1);
        if (rv != CKR_OK) {
            return rv;
        }
        job->value.resize(value.ulValueLen);
        value.pValue = job->value.data();
        rv = fn.C_GetAttributeValue(session, handles.front(), &value, 1);
        job->found = rv == CKR_OK;
        return rv;
    });
    if (!job->found) {
        return std::nullopt;
    }
    return job->value;
}

std::vector<std::uint8_t> Pkcs11Hsm::public_key_der(std::string_view label) {
    struct PublicJob {
        CK_KEY_TYPE key_type = 0;
        std::vector<std::uint8_t> first = std::vector<std::uint8_t>(1024);
        std::vector<std::uint8_t> second = std::vector<std::uint8_t>(16);
    };
    auto job = std::make_shared<PublicJob>();
    with_key(
        label, "reading a public key",
        [job](CK_FUNCTION_LIST& fn, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key) {
            CK_ATTRIBUTE type{CKA_KEY_TYPE, &job->key_type, sizeof(job->key_type)};
            CK_RV rv = fn.C_GetAttributeValue(session, key, &type, 1);
            if (rv != CKR_OK) {
                return rv;
            }
            const bool ec = job->key_type == CKK_EC;
            CK_ATTRIBUTE values[] = {
                {ec ? CKA_EC_POINT : CKA_MODULUS, job->first.data(), job->first.size()},
                {CKA_PUBLIC_EXPONENT, job->second.data(), job->second.size()}};
            rv = fn.C_GetAttributeValue(session, key, values, ec ? 1 : 2);
            job->first.resize(values[0].ulValueLen);
            job->second.resize(ec ? 0 : values[1].ulValueLen);
            return rv;
        },
        CKO_PUBLIC_KEY);
    if (job->key_type == CKK_EC) {
        return p256_public_key_der(job->first);
    }
    return rsa_public_key_der(job->first, job->second);
}

std::vector<std::uint8_t> Pkcs11Hsm::sign_with_private_key(std::string_view label,
                                                           std::span<const std::uint8_t> input) {
    struct SignJob {
        std::vector<std::uint8_t> input;
        std::vector<std::uint8_t> signature = std::vector<std::uint8_t>(512);
    };
    auto job = std::make_shared<SignJob>();
    job->input = copy_of(input);
    with_key(
        label, "signing with a private key",
        [job](CK_FUNCTION_LIST& fn, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key) {
            CK_KEY_TYPE key_type = 0;
            CK_ATTRIBUTE type{CKA_KEY_TYPE, &key_type, sizeof(key_type)};
            CK_RV rv = fn.C_GetAttributeValue(session, key, &type, 1);
            if (rv != CKR_OK) {
                return rv;
            }
            CK_MECHANISM mechanism{key_type == CKK_EC ? CKM_ECDSA : CKM_RSA_PKCS, nullptr, 0};
            rv = fn.C_SignInit(session, &mechanism, key);
            if (rv != CKR_OK) {
                return rv;
            }
            CK_ULONG length = job->signature.size();
            rv = fn.C_Sign(session, job->input.data(), job->input.size(), job->signature.data(),
                           &length);
            job->signature.resize(length);
            return rv;
        },
        CKO_PRIVATE_KEY);
    return job->signature;
}

std::vector<KeyInfo> Pkcs11Hsm::list_keys() {
    auto keys = std::make_shared<std::vector<KeyInfo>>();
    run("listing keys", [keys](CK_FUNCTION_LIST& fn, CK_SESSION_HANDLE session) {
        keys->clear();
        CK_RV rv = fn.C_FindObjectsInit(session, nullptr, 0);
        if (rv != CKR_OK) {
            return rv;
        }
        std::vector<CK_OBJECT_HANDLE> handles(kMaxListedObjects);
        CK_ULONG count = 0;
        rv = fn.C_FindObjects(session, handles.data(), handles.size(), &count);
        fn.C_FindObjectsFinal(session);
        for (CK_ULONG i = 0; rv == CKR_OK && i < count; ++i) {
            if (auto info = read_key_info(fn, session, handles[i])) {
                keys->push_back(std::move(*info));
            }
        }
        return rv;
    });
    return *keys;
}

// The slot comes from a pooled session, so that the call finds the token
// again after a reconnect and runs under the call deadline like any other.
std::vector<CK_MECHANISM_TYPE> Pkcs11Hsm::mechanisms() {
    auto list = std::make_shared<std::vector<CK_MECHANISM_TYPE>>();
    run("C_GetMechanismList", [list](CK_FUNCTION_LIST& fn, CK_SESSION_HANDLE session) {
        CK_SESSION_INFO info{};
        CK_RV rv = fn.C_GetSessionInfo(session, &info);
        if (rv != CKR_OK) {
            return rv;
        }
        CK_ULONG count = 0;
        rv = fn.C_GetMechanismList(info.slotID, nullptr, &count);
        if (rv != CKR_OK) {
            return rv;
        }
        list->resize(count);
        rv = fn.C_GetMechanismList(info.slotID, list->data(), &count);
        list->resize(count);
        return rv;
    });
    return *list;
}

}  // namespace

std::shared_ptr<Hsm> Hsm::open(const HsmConfig& config) {
    if (config.pin_file.empty()) {
        throw HsmError(Fault::config, "no PIN file is configured");
    }
    (void)read_pin_file(config.pin_file);
    return std::make_shared<Pkcs11Hsm>(config);
}

}  // namespace otpbox::hsm
