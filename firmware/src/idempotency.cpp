#include "otpbox/firmware/idempotency.hpp"

#include <boost/json.hpp>

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
    // One at a time per key, so that a second request with the same key
    // waits for the first one's answer instead of doing the work again.
    const auto key_lock = lock_for(request.client_subject, request.idempotency_key);
    std::lock_guard lock(*key_lock);
    auto& database = m_context.database;
    const auto now_ms = to_millis(m_context.clock.now());

    auto stored = database.read([&] {
        std::optional<api::Response> found;
        auto row = database.prepare(
            "SELECT status, body, headers, method, target FROM idempotency "
            "WHERE client = ? AND key = ? AND created_at > ?");
        row.bind(1, request.client_subject)
            .bind(2, request.idempotency_key)
            .bind(3, now_ms - std::chrono::duration_cast<std::chrono::milliseconds>(kKeep).count());
        if (row.step()) {
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
                    "body, headers, created_at) VALUES (?,?,?,?,?,?,?,?)")
                .bind(1, request.client_subject)
                .bind(2, request.idempotency_key)
                .bind(3, request.method_name)
                .bind(4, request.target)
                .bind(5, response.status)
                .bind(6, response.body)
                .bind(7, encode_headers(response))
                .bind(8, now_ms)
                .run();
        });
    }
    return response;
}

}  // namespace otpbox::firmware
