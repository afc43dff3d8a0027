#include "modem_worker.hpp"

#include <algorithm>

namespace otpbox::gsm {
namespace {

constexpr auto kIdleListen = std::chrono::milliseconds(200);
constexpr auto kIdleWait = std::chrono::milliseconds(800);
// The idle listen looks at the queue this often: a read of the serial port
// cannot also wait for an enqueue, and an SMS that comes meanwhile should
// not wait for the whole listen before its AT+CMGS.
constexpr auto kListenSlice = std::chrono::milliseconds(10);

[[nodiscard]] bool is_sim_locked(const AtError& error) noexcept {
    return error.code() == make_error_code(AtErrc::sim_locked);
}

}  // namespace

ModemWorker::ModemWorker(ModemConfig config, SmsQueue::Impl& queue)
    : m_config(std::move(config)), m_queue(queue), m_modem(m_config) {
    m_health.name = m_config.name;
    m_health.state = "stopped";
    m_health.registration = "unknown";
}

ModemWorker::~ModemWorker() {
    request_stop();
    join();
}

void ModemWorker::start() {
    m_stopping = false;
    m_thread = std::thread([this] { run(); });
}

void ModemWorker::request_stop() {
    {
        std::lock_guard lock(m_pause_mutex);
        m_stopping = true;
    }
    m_pause.notify_all();
}

void ModemWorker::join() {
    if (m_thread.joinable()) {
        m_thread.join();
    }
}

ModemHealth ModemWorker::health() const {
    std::lock_guard lock(m_health_mutex);
    return m_health;
}

void ModemWorker::run() {
    while (!m_stopping) {
        if (!m_modem.is_open() && !bring_up()) {
            continue;
        }
        // A stop asked for while the modem came up takes no SMS: it would
        // wait for the send.
        if (m_stopping) {
            break;
        }
        try {
            serve_once();
        } catch (const SmsDatabaseError& error) {
            // The database, not the modem, failed: keep the modem open.
            update_health("ready", error.what());
            pause(kFirstBackoff);
        } catch (const std::exception& error) {
            take_out(error.what());
        }
    }
    m_modem.close();
    update_health("stopped");
}

// Returns true when the modem is ready. A locked SIM parks the worker: it
// is not retried, so the PIN is never tried twice.
bool ModemWorker::bring_up() {
    update_health("initialising");
    try {
        m_modem.open();
    } catch (const AtError& error) {
        if (is_sim_locked(error)) {
            update_health("sim_locked", error.reason());
            pause(std::chrono::hours(24 * 365));
            return false;
        }
        take_out(error.what());
        return false;
    } catch (const std::exception& error) {
        take_out(error.what());
        return false;
    }
    // The backoff starts over only once an SMS went out: a modem that comes
    // up but fails every send waits longer each time (see send_one).
    m_consecutive_errors = 0;
    m_next_poll = std::chrono::steady_clock::now() + m_config.poll_interval;
    update_health("ready");
    return true;
}

void ModemWorker::serve_once() {
    if (std::chrono::steady_clock::now() >= m_next_poll) {
        m_modem.poll();
        m_next_poll = std::chrono::steady_clock::now() + m_config.poll_interval;
        update_health("ready");
    }
    forward_reports();
    // The wake count is read before the queue: an SMS enqueued while the
    // modem listens below ends the wait at once instead of being missed.
    const auto seen = m_queue.wake_count();
    auto sms = m_queue.claim(m_config.name);
    if (!sms) {
        listen_while_idle(seen);
        m_queue.wait_for_work(kIdleWait, seen);
        return;
    }
    send_one(*sms);
}

// Collects status reports for up to kIdleListen, and less when the queue
// was woken since `seen`.
void ModemWorker::listen_while_idle(std::uint64_t seen) {
    const auto until = std::chrono::steady_clock::now() + kIdleListen;
    while (m_queue.wake_count() == seen && std::chrono::steady_clock::now() < until) {
        m_modem.listen(kListenSlice);
    }
    forward_reports();
}

void ModemWorker::send_one(ClaimedSms& sms) {
    SubmitOptions options;
    options.validity = m_config.validity;
    options.status_report = true;
    options.concat_reference = static_cast<std::uint8_t>(m_random());
    try {
        m_modem.send(sms.to, sms.text, options,
                     [&](std::size_t part, std::size_t parts, std::uint8_t reference) {
                         m_queue.record_part(sms.id, m_config.name, part, parts, reference);
                     });
    } catch (const AtError& error) {
        count_send_reset();
        handle_send_error(sms, error);
        return;
    } catch (const PduError& error) {
        m_queue.fail(sms.id, std::string("cannot encode: ") + error.what());
        std::lock_guard lock(m_health_mutex);
        ++m_health.failed;
        return;
    } catch (const std::exception& error) {
        requeue(sms, error.what(), m_queue.now());
        throw;
    }
    m_consecutive_errors = 0;
    m_backoff = kFirstBackoff;
    {
        std::lock_guard lock(m_health_mutex);
        ++m_health.sent;
    }
    count_send_reset();
}

void ModemWorker::handle_send_error(const ClaimedSms& sms, const AtError& error) {
    switch (classify_send_error(error.code())) {
        case SendFault::permanent: {
            m_queue.fail(sms.id, error.what());
            std::lock_guard lock(m_health_mutex);
            ++m_health.failed;
            m_health.last_error = error.what();
            return;
        }
        case SendFault::temporary:
            requeue(sms, error.what(), m_queue.now() + m_config.retry_delay * sms.attempts,
                    SendDoubt::not_sent);
            if (++m_consecutive_errors < kMaxConsecutiveErrors) {
                update_health("ready", error.what());
                return;
            }
            break;
        case SendFault::modem:
            // Back at once, so that another modem takes it. An OK without a
            // +CMGS reference lands here too, though that SMS may have gone:
            // the queue hands it over kMaxAttempts times in all, then fails it.
            requeue(sms, error.what(), m_queue.now());
            break;
    }
    throw error;
}

// A long SMS cut off after a part was sent fails in the queue instead of
// going back: that counts as this modem's failure, once, since a failed SMS
// is never claimed again.
void ModemWorker::requeue(const ClaimedSms& sms, std::string_view failure, TimePoint not_before,
                          SendDoubt doubt) {
    if (m_queue.requeue(sms.id, failure, not_before, doubt) == Requeued::failed) {
        std::lock_guard lock(m_health_mutex);
        ++m_health.failed;
    }
}

// Modem::send resets a modem whose OK after +CMGS never came. The modem is
// usually ready again before anyone looks at its state, so health counts
// these resets for the daemon to log.
void ModemWorker::count_send_reset() {
    const auto& reason = m_modem.send_reset();
    if (!reason) {
        return;
    }
    std::lock_guard lock(m_health_mutex);
    ++m_health.resets;
    m_health.last_reset = *reason;
    m_health.last_error = *reason;
}

void ModemWorker::forward_reports() {
    for (const auto& report : m_modem.take_status_reports()) {
        m_queue.record_report(m_config.name, report);
    }
}

void ModemWorker::take_out(const std::string& reason) {
    m_modem.reset();
    update_health("failed", reason);
    pause(m_backoff);
    m_backoff = std::min<std::chrono::milliseconds>(m_backoff * 2, kMaxBackoff);
}

void ModemWorker::pause(std::chrono::milliseconds duration) {
    std::unique_lock lock(m_pause_mutex);
    m_pause.wait_for(lock, duration, [this] { return m_stopping.load(); });
}

void ModemWorker::update_health(std::string_view state, std::string_view error) {
    std::lock_guard lock(m_health_mutex);
    m_health.state = std::string(state);
    m_health.registration = std::string(registration_name(m_modem.registration()));
    m_health.signal_rssi = m_modem.signal_rssi();
    if (!error.empty()) {
        m_health.last_error = std::string(error);
    }
}

}  // namespace otpbox::gsm
