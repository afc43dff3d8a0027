#include "api/http_answers.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace otpbox::api {

namespace http = boost::beast::http;

namespace {

// RFC 9110 section 15.2 and 15.3.5: 1xx and 204 answers carry no content.
bool has_no_content(unsigned status) {
    return status < 200 || status == 204 || status == 304;
}

}  // namespace

Response error_answer(unsigned status, const std::string& code, const std::string& message) {
    Response response;
    response.status = status;
    response.body =
        boost::json::serialize(boost::json::object{{"error", code}, {"message", message}});
    return response;
}

HttpResponse to_http(Response response, unsigned version, bool keep_alive) {
    HttpResponse out;
    out.version(version);
    out.result(response.status);
    for (auto& [name, value] : response.headers) {
        out.insert(name, value);
    }
    if (has_no_content(response.status)) {
        out.erase(http::field::content_type);
        response.body.clear();
    } else if (out.find(http::field::content_type) == out.end()) {
        out.set(http::field::content_type, "application/json");
    }
    out.set(http::field::cache_control, "no-store");
    out.set("X-Content-Type-Options", "nosniff");
    out.erase(http::field::server);
    out.body() = std::move(response.body);
    out.keep_alive(keep_alive);
    out.prepare_payload();
    return out;
}

}  // namespace otpbox::api
