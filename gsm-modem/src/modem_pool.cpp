#include "otpbox/gsm/modem_pool.hpp"

#include "modem_worker.hpp"

namespace otpbox::gsm {

class ModemPool::Impl {
  public:
    Impl(std::vector<ModemConfig> modems, SmsQueue& queue) {
        for (auto& config : modems) {
            m_workers.push_back(std::make_unique<ModemWorker>(std::move(config), queue.impl()));
        }
        m_queue = &queue.impl();
    }

    void start() {
        if (m_running) {
            return;
        }
        for (auto& worker : m_workers) {
            worker->start();
        }
        m_running = true;
    }

    void stop() {
        for (auto& worker : m_workers) {
            worker->request_stop();
        }
        m_queue->wake();
        for (auto& worker : m_workers) {
            worker->join();
        }
        m_running = false;
    }

    std::vector<ModemHealth> health() const {
        std::vector<ModemHealth> result;
        for (const auto& worker : m_workers) {
            result.push_back(worker->health());
        }
        return result;
    }

  private:
    std::vector<std::unique_ptr<ModemWorker>> m_workers;
    SmsQueue::Impl* m_queue = nullptr;
    bool m_running = false;
};

ModemPool::ModemPool(std::vector<ModemConfig> modems, SmsQueue& queue)
    : m_impl(std::make_unique<Impl>(std::move(modems), queue)) {}

ModemPool::~ModemPool() {
    stop();
}

void ModemPool::start() {
    m_impl->start();
}

void ModemPool::stop() {
    m_impl->stop();
}

std::vector<ModemHealth> ModemPool::health() {
    return m_impl->health();
}

}  // namespace otpbox::gsm
