#include "otpbox/firmware/router.hpp"

#include "otpbox/firmware/commit_gate.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <optional>
#include <vector>

#include "json_keys.hpp"
#include "otpbox/firmware/refusal.hpp"
#include "otpbox/firmware/time_format.hpp"
#include "otpbox/hsm/error.hpp"

namespace otpbox::firmware {

namespace json = boost::json;
using boost::beast::http::verb;

namespace {

struct ReasonAnswer {
    Reason reason;
    unsigned status;
    const char* code;
};

constexpr ReasonAnswer kAnswers[] = {
    {Reason::invalid_request, 400, "invalid_request"},
    {Reason::invalid_response, 400, "invalid_response"},
    {Reason::forbidden, 403, "forbidden"},
    {Reason::rejected, 403, "rejected"},
    {Reason::not_found, 404, "not_found"},
    {Reason::no_phone, 404, "no_phone"},
    {Reason::no_phone_to_send, 409, "no_phone"},
    {Reason::unknown_card, 404, "unknown_card"},
    {Reason::unknown_sms, 404, "unknown_sms"},
    {Reason::method_not_allowed, 405, "method_not_allowed"},
    {Reason::invalid_state, 409, "invalid_state"},
    {Reason::no_second_factor, 409, "no_second_factor"},
    {Reason::gone, 410, "gone"},
    {Reason::too_large, 413, "too_large"},
    {Reason::unsupported_media_type, 415, "unsupported_media_type"},
    {Reason::invalid_number, 422, "invalid_number"},
    {Reason::country_not_allowed, 422, "country_not_allowed"},
    {Reason::idempotency_key_reused, 422, "idempotency_key_reused"},
    {Reason::locked, 423, "locked"},
    {Reason::sms_limit, 429, "sms_limit"},
    {Reason::unavailable, 503, "unavailable"},
};

const ReasonAnswer& answer_for(Reason reason) {
    return *std::find_if(std::begin(kAnswers), std::end(kAnswers),
                         [&](const ReasonAnswer& answer) { return answer.reason == reason; });
}

api::Response json_response(unsigned status, const json::value& body) {
    api::Response response;
    response.status = status;
    response.body = json::serialize(body);
    return response;
}

std::vector<std::string> path_segments(const std::string& target) {
    const auto path = target.substr(0, target.find('?'));
    std::vector<std::string> segments;
    std::size_t start = 1;
    while (start <= path.size()) {
        const auto end = path.find('/', start);
        segments.push_back(path.substr(start, end - start));
        if (end == std::string::npos) {
            break;
        }
        start = end + 1;
    }
    return segments;
}

// The JSON object of the body; an absent body is an empty object when
// allowed. Refuses malformed JSON and non-objects.
json::object body_object(const api::Request& request, bool body_required) {
    if (request.body.empty()) {
        if (body_required) {
            throw Refused(Reason::invalid_request, "this call needs a JSON body");
        }
        return {};
    }
    json::error_code error;
    auto value = json::parse(request.body, error);
    if (error) {
        throw Refused(Reason::invalid_request, "the body is not valid JSON");
    }
    if (!value.is_object()) {
        throw Refused(Reason::invalid_request, "the body must be a JSON object");
    }
    if (detail::has_duplicate_keys(request.body)) {
        throw Refused(Reason::invalid_request, "the body names a field twice");
    }
    return std::move(value.as_object());
}

std::string string_field(const json::object& body, std::string_view name, bool required) {
    const auto* field = body.if_contains(name);
    if (field == nullptr) {
        if (required) {
            throw Refused(Reason::invalid_request,
                          "the field \"" + std::string(name) + "\" is missing");
        }
        return {};
    }
    if (!field->is_string()) {
        throw Refused(Reason::invalid_request,
                      "the field \"" + std::string(name) + "\" must be a string");
    }
    return std::string(field->as_string());
}

json::value challenge_json(const Challenge& challenge) {
    json::object body{{"challenge", challenge.id},
                      {"method", challenge.method},
                      {"expires_at", rfc3339(challenge.expires_at)}};
    if (challenge.method == "pincard") {
        json::array cells;
        for (const auto& cell : challenge.cells) {
            cells.emplace_back(cell);
        }
        body["cells"] = std::move(cells);
    } else {
        body["masked"] = challenge.masked;
        body["sms"] = challenge.sms_id;
    }
    return body;
}

json::value card_json(const IssuedCard& card) {
    json::array grid;
    for (const auto& row : card.grid) {
        json::array cells;
        for (const auto& cell : row) {
            cells.emplace_back(cell);
        }
        grid.emplace_back(std::move(cells));
    }
    return json::object{{"serial", card.serial},
                        {"state", card.state},
                        {"columns", card.layout.columns},
                        {"rows", card.layout.rows},
                        {"grid", std::move(grid)}};
}

bool content_type_is_json(const std::string& content_type) {
    auto media = content_type.substr(0, content_type.find(';'));
    media.erase(std::remove_if(media.begin(), media.end(), [](char c) { return c == ' '; }),
                media.end());
    std::transform(media.begin(), media.end(), media.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return media == "application/json";
}

struct Route {
    verb method;
    std::vector<std::string> pattern;  // "{}" matches one segment
    bool monitor_allowed;
};

bool matches(const std::vector<std::string>& pattern, const std::vector<std::string>& segments) {
    if (pattern.size() != segments.size()) {
        return false;
    }
    for (std::size_t i = 0; i < pattern.size(); ++i) {
        if (pattern[i] != "{}" && pattern[i] != segments[i]) {
            return false;
        }
        if (pattern[i] == "{}" && segments[i].empty()) {
            return false;
        }
    }
    return true;
}

const std::vector<Route>& routes() {
    static const std::vector<Route> table = {
        {verb::put, {"v1", "users", "{}", "phone"}, false},
        {verb::get, {"v1", "users", "{}", "phone"}, false},
        {verb::delete_, {"v1", "users", "{}", "phone"}, false},
        {verb::delete_, {"v1", "users", "{}"}, false},
        {verb::post, {"v1", "users", "{}", "pincards"}, false},
        {verb::get, {"v1", "users", "{}", "pincards"}, false},
        {verb::post, {"v1", "pincards", "{}", "block"}, false},
        {verb::post, {"v1", "pincards", "{}", "unblock"}, false},
        {verb::post, {"v1", "pincards", "{}", "revoke"}, false},
        {verb::post, {"v1", "users", "{}", "login"}, false},
        {verb::post, {"v1", "users", "{}", "otp"}, false},
        {verb::post, {"v1", "challenges", "{}", "verify"}, false},
        {verb::get, {"v1", "sms", "{}"}, false},
        {verb::get, {"v1", "health"}, true},
        {verb::get, {"metrics"}, true},
    };
    return table;
}

// 503 with Retry-After: a part of the appliance is away for now.
Refused unavailable(const std::string& message) {
    Refused refused(Reason::unavailable, message);
    refused.retry_after = std::chrono::seconds(5);
    return refused;
}

Refused hsm_unavailable() {
    return unavailable("the HSM cannot be reached; try again shortly");
}

}  // namespace

api::Response error_response(unsigned status, const std::string& code, const std::string& message) {
    return json_response(status, json::object{{"error", code}, {"message", message}});
}

api::Response refusal_response(const Refused& refused) {
    const auto& answer = answer_for(refused.reason());
    json::object body{{"error", answer.code}, {"message", refused.what()}};
    if (refused.attempts_left) {
        body["attempts_left"] = *refused.attempts_left;
    }
    if (!refused.fallbacks.empty()) {
        json::array fallbacks;
        for (const auto& fallback : refused.fallbacks) {
            fallbacks.emplace_back(fallback);
        }
        body["fallbacks"] = std::move(fallbacks);
    }
    auto response = json_response(answer.status, body);
    if (!refused.allow.empty()) {
        response.headers.emplace_back("Allow", refused.allow);
    }
    if (refused.retry_after) {
        response.headers.emplace_back(
            "Retry-After", std::to_string(std::max<long>(1, refused.retry_after->count())));
    }
    return response;
}

api::Response Router::handle(const api::Request& request) {
    // RFC 9110 section 9.3.2: HEAD gets the answer GET would get, header and
    // all; the connection sends it without the body.
    if (request.method == verb::head) {
        auto as_get = request;
        as_get.method = verb::get;
        return handle(as_get);
    }
    try {
        return dispatch(request);
    } catch (const Refused& refused) {
        return refusal_response(refused);
    } catch (const hsm::HsmError&) {
        return refusal_response(hsm_unavailable());
    } catch (const DatabaseError&) {
        return refusal_response(unavailable("the database cannot be reached; try again shortly"));
    } catch (const RequestAnswered&) {
        // Answered 503 at its deadline already; this answer is never sent.
        return refusal_response(unavailable("the request was not finished in time"));
    }
}

api::Response Router::dispatch(const api::Request& request) {
    const auto segments = path_segments(request.target);
    const Route* route = nullptr;
    std::string allowed;  // the path's methods, for 405's Allow header (RFC 9110 15.5.6)
    for (const auto& candidate : routes()) {
        if (matches(candidate.pattern, segments)) {
            allowed += (allowed.empty() ? "" : ", ") +
                       std::string(boost::beast::http::to_string(candidate.method));
            if (candidate.method == verb::get) {
                allowed += ", HEAD";
            }
            if (candidate.method == request.method) {
                route = &candidate;
                break;
            }
        }
    }
    if (route == nullptr && allowed.empty()) {
        throw Refused(Reason::not_found, "no such route");
    }
    if (route == nullptr) {
        Refused refused(Reason::method_not_allowed,
                        request.method_name + " is not allowed on this path");
        refused.allow = allowed;
        throw refused;
    }
    if (request.role != api::Role::portal && !route->monitor_allowed) {
        throw Refused(Reason::forbidden, "this client's role does not allow this call");
    }
    if (request.has_body && !content_type_is_json(request.content_type)) {
        throw Refused(Reason::unsupported_media_type, "the body must be application/json");
    }

    const auto& path = route->pattern;
    const auto& actor = request.client_subject;
    if (path[0] == "metrics") {
        api::Response response;
        response.body = m_parts.metrics();
        response.headers.emplace_back("Content-Type", "text/plain; version=0.0.4");
        return response;
    }
    if (path[1] == "health") {
        auto report = m_parts.health();
        auto response = json_response(report.status, report.body);
        if (report.status == 503) {
            response.headers.emplace_back("Retry-After", "5");
        }
        return response;
    }

    const auto& key = segments[2];
    if (path[1] == "users" && !valid_user_id(key)) {
        throw Refused(Reason::invalid_request,
                      "a user id is 1 to 64 of A-Z a-z 0-9 . _ @ -, not . or .. alone");
    }

    // Calls that need no HSM work (reading a masked number, the card list, an
    // SMS's state) answer 503 too while the HSM is away, as every call but
    // health and metrics does: the portal sees one state of the appliance. A
    // malformed user id is the client's fault and says so first. How the HSM
    // was last seen costs no call to it; the daemon's poll looks for a lost
    // token every 2 s.
    if (!m_parts.context.secrets.hsm().last_health().ok) {
        throw hsm_unavailable();
    }

    if (path[1] == "users" && path.size() == 4 && path[3] == "phone") {
        if (request.method == verb::put) {
            const auto body = body_object(request, true);
            const auto masked =
                m_parts.phones.register_number(key, string_field(body, "number", true), actor);
            return json_response(200, json::object{{"masked", masked}});
        }
        if (request.method == verb::get) {
            return json_response(200, json::object{{"masked", m_parts.phones.masked(key)}});
        }
        m_parts.phones.erase(key, actor);
        return {204, "", {}};
    }
    if (path[1] == "users" && path.size() == 3) {
        m_parts.erase_user(key, actor);
        return {204, "", {}};
    }

    return m_parts.idempotency.run(request, [&]() -> api::Response {
        try {
            if (path[1] == "users" && path[3] == "pincards") {
                if (request.method == verb::get) {
                    json::array cards;
                    for (const auto& card : m_parts.cards.list(key)) {
                        cards.push_back(json::object{{"serial", card.serial},
                                                     {"state", card.state},
                                                     {"issued_at", rfc3339(card.issued_at)}});
                    }
                    return json_response(200, json::object{{"pincards", std::move(cards)}});
                }
                (void)body_object(request, false);
                return json_response(201, card_json(m_parts.cards.issue(key, actor)));
            }
            if (path[1] == "pincards") {
                const auto body = body_object(request, false);
                std::string state;
                if (path[3] == "block") {
                    state = m_parts.cards.block(key, string_field(body, "reason", false), actor);
                } else if (path[3] == "unblock") {
                    state = m_parts.cards.unblock(key, actor);
                } else {
                    state = m_parts.cards.revoke(key, actor);
                }
                return json_response(200, json::object{{"serial", key}, {"state", state}});
            }
            if (path[1] == "users" && path[3] == "login") {
                (void)body_object(request, false);
                return json_response(201, challenge_json(m_parts.challenges.login(key, actor)));
            }
            if (path[1] == "users" && path[3] == "otp") {
                (void)body_object(request, false);
                return json_response(201,
                                     challenge_json(m_parts.challenges.request_otp(key, actor)));
            }
            if (path[1] == "challenges") {
                const auto body = body_object(request, true);
                m_parts.challenges.verify(key, string_field(body, "response", true), actor);
                return json_response(200, json::object{{"result", "accepted"}});
            }
            // GET /v1/sms/{id}: the only route left.
            const auto record = m_parts.context.sms.find(key);
            if (!record) {
                throw Refused(Reason::unknown_sms, "no SMS has this id");
            }
            const auto status = record->status == gsm::SmsStatus::sending
                                    ? std::string_view("queued")
                                    : gsm::status_name(record->status);
            return json_response(
                200, json::object{{"status", status}, {"updated_at", rfc3339(record->updated_at)}});
        } catch (const Refused& refused) {
            return refusal_response(refused);
        }
    });
}

}  // namespace otpbox::firmware
