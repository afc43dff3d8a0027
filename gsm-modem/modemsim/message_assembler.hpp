#pragma once

// Joins the parts of a concatenated SMS (TS 23.040 9.2.3.24.1): a message is
// complete once every sequence number of its reference has arrived.

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <tuple>

#include "otpbox/gsm/pdu.hpp"
#include "outbox.hpp"

namespace otpbox::modemsim {

class MessageAssembler {
  public:
    // The whole message once its last missing part arrives.
    [[nodiscard]] std::optional<SentMessage> add(const gsm::DecodedSubmit& part,
                                                 const std::string& hex);

  private:
    using Key = std::tuple<std::string, std::uint16_t, std::uint8_t>;
    struct Pending {
        std::map<std::uint8_t, std::pair<std::string, std::string>> parts;  // text, hex
    };

    // A host that never sends the last part must not grow memory forever.
    static constexpr std::size_t kMaxPending = 64;

    std::map<Key, Pending> m_pending;
    std::deque<Key> m_order;
};

}  // namespace otpbox::modemsim
