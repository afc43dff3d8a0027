#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <string>

#include "otpbox/firmware/api/server.hpp"

namespace otpbox::api {

using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

// {"error": code, "message": message}, the error form of DESIGN.md.
[[nodiscard]] Response error_answer(unsigned status, const std::string& code,
                                    const std::string& message);

// The wire form of a handler's answer: JSON unless the handler named a
// content type, never cached, always with its length, no Server header.
[[nodiscard]] HttpResponse to_http(Response response, unsigned version, bool keep_alive);

}  // namespace otpbox::api
