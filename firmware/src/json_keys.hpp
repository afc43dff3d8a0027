#pragma once

#include <string_view>

namespace otpbox::firmware::detail {

// Whether a JSON text has an object that names one key twice, at any depth.
// RFC 8259 4 leaves such an object's meaning to the reader (Boost.JSON keeps
// the last value, others the first), so a body that means one thing to the
// portal's checks and another here is refused instead. False for text that
// is not JSON at all: the parse that follows refuses that.
[[nodiscard]] bool has_duplicate_keys(std::string_view text);

}  // namespace otpbox::firmware::detail
