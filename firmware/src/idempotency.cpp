#include "otpbox/firmware/idempotency.hpp"

#include <openssl/evp.h>

#include <boost/json.hpp>

#include <algorithm>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>

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
    if (key.empty() || key.size() > kMaxKeyLength || !visible) {
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

// The answer kept for this client's key, if the key came within the last
// 24 h; refused when it came with another request.
std::optional<api::Response> stored_answer(Database& database, const api::Request& request,
                                           const std::string& fingerprint,
                                           std::int64_t oldest_kept_ms) {
    auto row = database.prepare(
        "SELECT status, body, headers, fingerprint FROM idempotency "
        "WHERE client = ? AND key = ? AND created_at > ?");
    row.bind(1, request.client_subject).bind(2, *request.idempotency_key).bind(3, oldest_kept_ms);
    if (!row.step()) {
        return std::nullopt;
    }
    if (row.text(3) != fingerprint) {
        throw Refused(Reason::idempotency_key_reused,
                      "this Idempotency-Key came with another request in the last 24 h");
    }
    api::Response replayed;
    replayed.status = static_cast<unsigned>(row.integer(0));
    replayed.body = row.text(1);
    decode_headers(row.text(2), replayed);
    replayed.headers.emplace_back("Idempotent-Replayed", "true");
    return replayed;
}

void store_answer(Database& database, const api::Request& request, const api::Response& response,
                  const std::string& fingerprint, std::int64_t now_ms) {
    database
        .prepare(
            "INSERT OR REPLACE INTO idempotency (client, key, method, target, status, body, "
            "headers, created_at, fingerprint) VALUES (?,?,?,?,?,?,?,?,?)")
        .bind(1, request.client_subject)
        .bind(2, *request.idempotency_key)
        .bind(3, request.method_name)
        .bind(4, request.target)
        .bind(5, response.status)
        .bind(6, kept_body(response.body))
        .bind(7, encode_headers(response))
        .bind(8, now_ms)
        .bind(9, fingerprint)
        .run();
}

}  // namespace

api::Response Idempotency::run(const api::Request& request,
                               const std::function<api::Response()>& handle) {
    if (!request.idempotency_key || request.method != boost::beast::http::verb::post) {
        return handle();
    }
    check_key(*request.idempotency_key);
    const auto fingerprint = fingerprint_of(request);
    auto& database = m_context.database;
    const auto now_ms = to_millis(m_context.clock.now());
    const auto oldest_kept_ms =
        now_ms - std::chrono::duration_cast<std::chrono::milliseconds>(kKeep).count();

    // The work and its kept answer commit together: after a crash either
    // both are there (a retry gets the answer) or neither (a retry does the
    // work). The SMS queue writes in this transaction too. A second request
    // with the same key waits here for the first one's commit.
    return database.transaction([&] {
        if (auto replayed = stored_answer(database, request, fingerprint, oldest_kept_ms)) {
            return *replayed;
        }
        auto response = handle();
        // Server trouble (5xx) is not kept, so that the request can be made
        // again once the appliance serves.
        if (response.status < 500) {
            store_answer(database, request, response, fingerprint, now_ms);
            database.prepare("DELETE FROM idempotency WHERE created_at <= ?")
                .bind(1, oldest_kept_ms)
                .run();
        }
        return response;
    });
}

}  // namespace otpbox::firmware
