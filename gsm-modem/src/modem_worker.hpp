#pragma once

// One modem's worker thread: keeps the modem open, takes one message at a
// time from the queue, sends it, and takes the modem out with a growing
// pause when it fails. Stopping waits for a send in progress: at most the
// send timeout.

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "otpbox/gsm/at_error.hpp"
#include "otpbox/gsm/modem.hpp"
#include "sms_queue_impl.hpp"

namespace otpbox::gsm {

class ModemWorker {
  public:
    static constexpr auto kFirstBackoff = std::chrono::seconds(2);
    static constexpr auto kMaxBackoff = std::chrono::minutes(5);
    static constexpr int kMaxConsecutiveErrors = 3;

    ModemWorker(ModemConfig config, SmsQueue::Impl& queue);
    ~ModemWorker();
    ModemWorker(const ModemWorker&) = delete;
    ModemWorker& operator=(const ModemWorker&) = delete;

    void start();
    void request_stop();
    void join();
    [[nodiscard]] ModemHealth health() const;

  private:
    void run();
    bool bring_up();
    void serve_once();
    void listen_while_idle(std::uint64_t seen);
    void send_one(ClaimedSms& sms);
    void handle_send_error(const ClaimedSms& sms, const AtError& error);
    void requeue(const ClaimedSms& sms, std::string_view failure, TimePoint not_before,
                 SendDoubt doubt = SendDoubt::may_have_gone);
    void count_send_reset();
    void forward_reports();
    void take_out(const std::string& reason);
    void pause(std::chrono::milliseconds duration);
    void update_health(std::string_view state, std::string_view error = {});

    ModemConfig m_config;
    SmsQueue::Impl& m_queue;
    Modem m_modem;
    std::thread m_thread;
    std::atomic<bool> m_stopping{false};
    std::mutex m_pause_mutex;
    std::condition_variable m_pause;
    mutable std::mutex m_health_mutex;
    ModemHealth m_health;
    std::chrono::milliseconds m_backoff = kFirstBackoff;
    std::chrono::steady_clock::time_point m_next_poll;
    int m_consecutive_errors = 0;
    std::minstd_rand m_random{std::random_device{}()};
};

}  // namespace otpbox::gsm
