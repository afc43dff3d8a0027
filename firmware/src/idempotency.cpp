#include "otpbox/firmware/idempotency.hpp"

#include <openssl/evp.h>

#include <boost/json.hpp>

#include <algorithm>
#include <span>
#include <stdexcept>

#include "otpbox/firmware/refusal.hpp"
#include "otpbox/firmware/secrets.hpp"

namespace otpbox::firmware {

namespace {

constexpr auto kKeep = std::chrono::hours(24);

std::string encode_headers(const api::Response& response) {
    boost::json::array headers;
    for (const auto& [name, value] : response.headers) {
        headers.push_back(
            boost::json::array{boost::json::string(name), boost::json::string(value)});
    }
    return boost::json::serialize(headers);
}

void decode_headers(const std::string& text, api::Response& response) {
    for (const auto& pair : boost::json::parse(text).as_array()) {
        const auto& entry = pair.as_array();
        response.headers.emplace_back(std::string(entry.at(0).as_string()),
                                      std::string(entry.at(1).as_string()));
    }
}

constexpr std::size_t kMaxKeyLength = 255;

// A key is 1 to 255 visible ASCII characters (RFC 9110 field value, without spaces).
void check_key(const std::string& key) {
    const bool visible = std::all_of(key.begin(), key.end(), [](char c) {
        return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7F;
    });
    if (key.size() > kMaxKeyLength || !visible) {
        throw Refused(Reason::invalid_request,
                      "Idempotency-Key must be 1 to 255 visible ASCII characters");
    }
}

// SHA-256 of method, target and body: a key comes back only with the same request.
std::string fingerprint_of(const api::Request& request) {
    const std::string text = request.method_name + "\n" + request.target + "\n" + request.body;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha256(), nullptr) != 1) {
        throw std::runtime_error("SHA-256 failed");
    }
    return to_hex(std::span<const std::uint8_t>(digest, size));
}

// What is kept of an answer: a PINCard's grid leaves the appliance once, so
// a replayed issuance names the card but withholds its grid.
std::string kept_body(const std::string& body) {
    boost::system::error_code error;
    auto value = boost::json::parse(body, error);
    if (error || !value.is_object() || !value.as_object().contains("grid")) {
        return body;
    }
    auto& object = value.as_object();
    object.erase("grid");
    object["grid_withheld"] = true;
    return boost::json::serialize(object);
}

}  // namespace

std::shared_ptr<std::mutex> Idempotency::lock_for(const std::string& client,
                                                  const std::string& key) {
    constexpr std::size_t kPruneAbove = 1024;
    std::lock_guard guard(m_mutex);
    if (m_locks.size() > kPruneAbove) {
        std::erase_if(m_locks, [](const auto& entry) { return entry.second.expired(); });
    }
    auto& slot = m_locks[client + '\n' + key];
    auto lock = slot.lock();
    if (!lock) {
        lock = std::make_shared<std::mutex>();
        slot = lock;
    }
    return lock;
}

api::Response Idempotency::run(const api::Request& request,
                               const std::function<api::Response()>& handle) {
    if (request.idempotency_key.empty() || request.method != boost::beast::http::verb::post) {
        return handle();
    }
    check_key(request.idempotency_key);
    const auto fingerprint = fingerprint_of(request);
    // One at a time per key, so that a second request with the same key
    // waits for the first one's answer instead of doing the work again.
    const auto key_lock = lock_for(request.client_subject, request.idempotency_key);
    std::lock_guard lock(*key_lock);
    auto& database = m_context.database;
    const auto now_ms = to_millis(m_context.clock.now());

    auto stored = database.read([&] {
        std::optional<api::Response> found;
        auto row = database.prepare(
            "SELECT status, body, headers, fingerprint FROM idempotency "
            "WHERE client = ? AND key = ? AND created_at > ?");
        row.bind(1, request.client_subject)
            .bind(2, request.idempotency_key)
            .bind(3, now_ms - std::chrono::duration_cast<std::chrono::milliseconds>(kKeep).count());
        if (row.step()) {
            if (row.text(3) != fingerprint) {
                throw Refused(Reason::idempotency_key_reused,
                              "this Idempotency-Key came with another request in the last 24 h");
            }
            api::Response response;
            response.status = static_cast<unsigned>(row.integer(0));
            response.body = row.text(1);
            decode_headers(row.text(2), response);
            response.headers.emplace_back("Idempotent-Replayed", "true");
            found = response;
        }
        return found;
    });
    if (stored) {
        return *stored;
    }

    auto response = handle();
    // Server trouble (5xx) is not kept, so that the request can be made
    // again once the appliance serves. The answer is stored in a commit of
    // its own after the work's: a crash between the two lets a retry do the
    // work once more (docs/limitations.md).
    if (response.status < 500) {
        database.transaction([&] {
            database.prepare("DELETE FROM idempotency WHERE created_at <= ?")
                .bind(1,
                      now_ms - std::chrono::duration_cast<std::chrono::milliseconds>(kKeep).count())
                .run();
            database
                .prepare(
                    "INSERT OR REPLACE INTO idempotency (client, key, method, target, status, "
                    "body, headers, created_at, fingerprint) VALUES (?,?,?,?,?,?,?,?,?)")
                .bind(1, request.client_subject)
                .bind(2, request.idempotency_key)
                .bind(3, request.method_name)
                .bind(4, request.target)
                .bind(5, response.status)
                .bind(6, kept_body(response.body))
                .bind(7, encode_headers(response))
                .bind(8, now_ms)
                .bind(9, fingerprint)
                .run();
        });
    }
    return response;
}

}  // namespace otpbox::firmware
