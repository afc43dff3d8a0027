#pragma once

#include <boost/asio/ssl/context.hpp>

#include <memory>

#include "otpbox/firmware/api/server.hpp"

namespace otpbox::api {

// The server's TLS context after BSI TR-02102-2: TLS 1.2 and 1.3, ECDHE with
// AES-GCM, a client certificate from the configured CA whose subject is on the
// allow-list. Throws std::runtime_error naming the file or step that failed.
[[nodiscard]] std::unique_ptr<boost::asio::ssl::context> make_tls_context(const TlsConfig& tls);

}  // namespace otpbox::api
