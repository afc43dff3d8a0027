#include "message_assembler.hpp"

#include <algorithm>
#include <chrono>

namespace otpbox::modemsim {

std::optional<SentMessage> MessageAssembler::add(const gsm::DecodedSubmit& part,
                                                 const std::string& hex) {
    const auto now = std::chrono::system_clock::now();
    if (!part.concatenation || part.concatenation->total == 1) {
        return SentMessage{part.to, part.text, {hex}, now};
    }

    const auto& concat = *part.concatenation;
    const Key key{part.to, concat.reference, concat.total};
    if (!m_pending.contains(key)) {
        m_order.push_back(key);
        if (m_order.size() > kMaxPending) {
            m_pending.erase(m_order.front());
            m_order.pop_front();
        }
    }
    auto& pending = m_pending[key];
    pending.parts[concat.sequence] = {part.text, hex};
    if (pending.parts.size() < concat.total) {
        return std::nullopt;
    }

    SentMessage message{part.to, {}, {}, now};
    for (const auto& [sequence, text_and_hex] : pending.parts) {
        message.text += text_and_hex.first;
        message.pdus.push_back(text_and_hex.second);
    }
    m_pending.erase(key);
    m_order.erase(std::find(m_order.begin(), m_order.end(), key));
    return message;
}

}  // namespace otpbox::modemsim
