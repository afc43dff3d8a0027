#include "modem_slot.hpp"

namespace otpbox::firmware::detail {

ModemSlot::~ModemSlot() {
    stop();
}

void ModemSlot::restart(std::vector<gsm::ModemConfig> modems) {
    stop();
    auto next = std::make_shared<gsm::ModemPool>(std::move(modems), m_queue);
    next->start();
    const std::lock_guard lock(m_mutex);
    m_pool = std::move(next);
}

void ModemSlot::stop() {
    if (auto running = pool()) {
        running->stop();
    }
}

std::vector<gsm::ModemHealth> ModemSlot::health() const {
    const auto running = pool();
    return running ? running->health() : std::vector<gsm::ModemHealth>{};
}

std::shared_ptr<gsm::ModemPool> ModemSlot::pool() const {
    const std::lock_guard lock(m_mutex);
    return m_pool;
}

}  // namespace otpbox::firmware::detail
