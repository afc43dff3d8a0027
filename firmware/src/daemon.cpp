#include "otpbox/firmware/daemon.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include "config_changes.hpp"
#include "file_stamp.hpp"
#include "instance_lock.hpp"
#include "modem_slot.hpp"
#include "otpbox/firmware/audit_log.hpp"
#include "otpbox/firmware/challenge_service.hpp"
#include "otpbox/firmware/idempotency.hpp"
#include "otpbox/firmware/log_text.hpp"
#include "otpbox/firmware/metrics.hpp"
#include "otpbox/firmware/phone_service.hpp"
#include "otpbox/firmware/pincard_service.hpp"
#include "otpbox/firmware/refusal.hpp"
#include "otpbox/firmware/router.hpp"
#include "otpbox/firmware/sim_pins.hpp"
#include "otpbox/firmware/status_file.hpp"
#include "otpbox/firmware/users.hpp"
#include "otpbox/firmware/version.hpp"
#include "otpbox/gsm/modem_pool.hpp"
#include "otpbox/hsm/error.hpp"
#include "otpbox/hsm/key_labels.hpp"
#include "poll_tasks.hpp"
#include "tls_identity.hpp"

namespace otpbox::firmware {

namespace {

// The API's socket could not be bound or listened on.
class ListenError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr auto kProvisioningPoll = std::chrono::seconds(2);
constexpr auto kAnchorInterval = std::chrono::seconds(60);

const std::vector<std::string>& secret_key_labels() {
    static const std::vector<std::string> labels = {hsm::keys::versioned(hsm::keys::kCardKdk, 1),
                                                    hsm::keys::versioned(hsm::keys::kOtpMac, 1),
                                                    hsm::keys::versioned(hsm::keys::kDataEnc, 1),
                                                    hsm::keys::versioned(hsm::keys::kDataIndex, 1),
                                                    hsm::keys::versioned(hsm::keys::kAuditMac, 1)};
    return labels;
}

// A method HTTP does not define is a word the client chose, like a user id in
// the path: logs call it "other". Beast knows the registered methods.
std::string method_of(const std::string& method) {
    if (method.empty()) {
        return "-";
    }
    return boost::beast::http::string_to_verb(method) == boost::beast::http::verb::unknown ? "other"
                                                                                           : method;
}

std::string route_of(const std::string& target) {
    // Logs name the route, never what a client put in the path (a user id,
    // a serial, a number in a malformed path): only the API's own words are
    // kept, every other segment is "*".
    static const std::set<std::string, std::less<>> kWords = {
        "v1",     "users", "phone",  "pincards", "login",   "otp",    "challenges",
        "verify", "sms",   "health", "block",    "unblock", "revoke", "metrics"};
    if (!target.starts_with('/')) {
        return "-";
    }
    const auto path = std::string_view(target).substr(0, target.find('?'));
    std::string out;
    std::size_t start = 1;
    for (int index = 0;; ++index) {
        const auto end = path.find('/', start);
        const auto segment = path.substr(start, end == std::string_view::npos ? end : end - start);
        // The third segment of an API path is always a name the client chose.
        const bool known = kWords.contains(segment) && !(index == 2 && out.starts_with("/v1/"));
        out += '/';
        out += known ? segment : std::string_view(segment.empty() ? "" : "*");
        if (end == std::string_view::npos) {
            break;
        }
        start = end + 1;
    }
    return out;
}

// The files whose change a poll looks for. The key file counts only when the
// key is not in the HSM.
std::vector<fs::path> watched_files(const Config& config) {
    const auto& api = config.api;
    const auto key = api.key_label.empty() ? api.key_file : fs::path();
    return {config.file, api.clients_file, api.ca_file, api.certificate_file, api.crl_file, key};
}

// The stamps to compare the next poll with, for config as just read. seen
// was taken before the files were read, so a change made while they were
// read shows up at the next poll; when config names other files than the
// stamps (a path changed), those are stamped now instead.
detail::Fingerprint stamps_for(detail::Fingerprint seen, const Config& config) {
    auto now = detail::fingerprint(watched_files(config));
    const bool same_files =
        std::equal(seen.begin(), seen.end(), now.begin(), now.end(),
                   [](const auto& a, const auto& b) { return a.path == b.path; });
    return same_files ? std::move(seen) : std::move(now);
}

// Whether a watched file other than the configuration itself changed (the
// CA, certificate, CRL, key or clients file), whose contents a new reading
// of the configuration does not show.
bool files_besides_changed(const detail::Fingerprint& before, const detail::Fingerprint& now,
                           const fs::path& config_file) {
    for (const auto& stamp : now) {
        if (stamp.path == config_file) {
            continue;
        }
        const auto earlier = std::find_if(before.begin(), before.end(),
                                          [&](const auto& old) { return old.path == stamp.path; });
        if (earlier == before.end() || !(*earlier == stamp)) {
            return true;
        }
    }
    return false;
}

// The modems of config with the PINs stored at the console, and the modems
// whose stored PIN could not be opened, with why. A PIN file in the
// configuration wins over a stored PIN. Opening a PIN asks the HSM, one call
// per modem, each only when begin_call allows it: nullopt when it does not.
struct StoredPins {
    std::vector<gsm::ModemConfig> modems;
    std::vector<std::pair<std::string, std::string>> unusable;
};

std::optional<StoredPins> with_stored_pins(const Config& config, Database& database,
                                           Secrets& secrets,
                                           const std::function<bool()>& begin_call) {
    StoredPins pins{config.modems, {}};
    for (auto& modem : pins.modems) {
        if (modem.sim_pin) {
            continue;
        }
        if (!begin_call()) {
            return std::nullopt;
        }
        try {
            if (const auto pin = load_sim_pin(database, secrets, modem.name)) {
                modem.sim_pin = std::string(pin->view());
            }
        } catch (const SimPinError& error) {
            pins.unusable.emplace_back(modem.name, error.what());
        }
    }
    return pins;
}

void log_unusable_pins(const StoredPins& pins) {
    for (const auto& [modem, error] : pins.unusable) {
        spdlog::warn("event=sim_pin_unusable modem={} error=\"{}\"", modem, quotable(error));
    }
}

bool same_sim_pins(const std::vector<gsm::ModemConfig>& left,
                   const std::vector<gsm::ModemConfig>& right) {
    return std::equal(
        left.begin(), left.end(), right.begin(), right.end(),
        [](const auto& a, const auto& b) { return a.name == b.name && a.sim_pin == b.sim_pin; });
}

// The longest a begun stop takes when everything it waits for keeps to its
// deadline: its turn on the control strand (the stop-overdue guard's time),
// the handlers still running, then the modems, which send in parallel (a
// worker coming up, opening an SMS in the HSM, sending each of its parts,
// a reset after a lost OK), the database for the audit anchor, the poll
// tasks, and 5 s for the rest.
std::chrono::milliseconds stop_limit(const Config& config) {
    using std::chrono::milliseconds;
    const auto call = config.hsm.call_timeout;
    // The configuration refuses a template the SMS path cannot carry, or
    // one without {code}; a Config made otherwise counts the most parts an
    // SMS may have.
    long parts = 255;
    try {
        parts = static_cast<long>(otp_sms_parts(config.sms));
    } catch (const std::exception&) {
    }
    milliseconds modems{0};
    for (const auto& modem : config.modems) {
        const auto bring_up = 4 * modem.command_timeout;
        const auto send = parts * (modem.command_timeout + modem.send_timeout);
        const auto reset = modem.command_timeout + milliseconds(500);
        modems = std::max(modems, bring_up + call + send + reset);
    }
    const auto strand = call + std::chrono::seconds(5);
    return strand + config.api.limits.answer_timeout + modems + 2 * call + std::chrono::seconds(5);
}

}  // namespace

// The parts that exist only once the appliance is provisioned.
struct Serving {
    // The configuration as read when serving began. The services keep its
    // settings ([sms], [pincard], [[modems]]) until a restart; only the TLS
    // settings and the allow-list are reloaded while serving.
    std::shared_ptr<const Config> config;
    std::shared_ptr<hsm::Hsm> hsm;
    std::shared_ptr<detail::TlsIdentity> identity;  // shared with a reload's task
    std::shared_ptr<Secrets> secrets;               // shared with the poll's tasks
    std::unique_ptr<AuditLog> audit;
    std::unique_ptr<gsm::SmsQueue> queue;
    std::unique_ptr<detail::ModemSlot> modems;
    std::vector<gsm::ModemConfig> running_modems;  // with the SIM PINs they were started with
    std::unique_ptr<Context> context;
    std::unique_ptr<PhoneService> phones;
    std::unique_ptr<PincardService> cards;
    std::unique_ptr<ChallengeService> challenges;
    std::unique_ptr<Idempotency> idempotency;
    std::unique_ptr<Router> router;
    std::unique_ptr<api::Server> server;
};

// The timers and the signal set share one strand: polls, starts, reloads,
// modem restarts and the stop never run at the same time, whichever of the
// io_context's threads runs them.
class Daemon::Impl {
  public:
    Impl(Config config, std::shared_ptr<const Clock> clock)
        : m_config(std::make_shared<const Config>(std::move(config))),
          m_clock(clock ? std::move(clock) : std::make_shared<SystemClock>()),
          m_control(boost::asio::make_strand(m_io)),
          m_signals(m_io, SIGINT, SIGTERM),
          m_poll(m_control),
          m_anchor_timer(m_control),
          m_stop_overdue(m_io),
          m_call_timeout(m_config->hsm.call_timeout),
          m_stop_limit(stop_limit(*m_config)) {}

    void run();
    [[nodiscard]] bool hsm_call_in_flight() const { return m_stuck > 0 || m_task_stuck; }

  private:
    std::vector<std::string> missing_parts();
    void check_hsm(std::vector<std::string>& missing);
    void check_tls_key(std::vector<std::string>& missing);
    void reread_config();
    void try_start();
    void report_missing(const std::vector<std::string>& missing);
    void report_api_error(const std::string& error);
    void start_serving();
    std::unique_ptr<Serving> make_serving();
    void schedule_poll();
    using TaskWork = std::function<std::function<void()>(const detail::PollTasks::Task&)>;
    void start_task(const std::string& name, TaskWork work);
    void on_poll();
    void stop_for_fatal(std::exception_ptr fatal, const std::string& what);
    void write_status();
    void log_modem_changes();
    void log_key_versions();
    void log_evictions();
    void log_refused_handshakes();
    void log_stuck_requests();
    void log_sync_failure();
    void log_hsm_state();
    void look_for_lost_token();
    void poll_serving();
    void reload_if_changed();
    void report_restart_needed();
    void restart_modems_if_pins_changed();
    void warn_once(const std::string& event, const std::exception& error);
    void on_signal(int signal);
    void begin_stop(const std::string& fatal_error);
    void watch_the_stop(const std::string& fatal_error);
    void end_the_stop_watch();
    void stop();
    void stop_serving();
    void refuse_foreign_objects();
    void write_anchor_now();
    std::string anchor_problem(const AuditAnchor& latest, std::string& against);
    void report_anchor_problem(const std::string& problem, const std::string& against);
    [[nodiscard]] std::string audit_problem() const;
    void schedule_anchor();
    HealthReport health();
    std::string metrics();
    void log_request(const api::AccessEntry& entry);
    api::Response handle(const api::Request& request);
    void erase_user(const std::string& user, const std::string& actor);

    // The configuration file as last read well; used on m_control only.
    // Request handlers read Serving::config, which never changes.
    std::shared_ptr<const Config> m_config;
    std::shared_ptr<const Clock> m_clock;
    boost::asio::io_context m_io;
    boost::asio::strand<boost::asio::io_context::executor_type> m_control;
    boost::asio::signal_set m_signals;
    boost::asio::steady_timer m_poll;
    boost::asio::steady_timer m_anchor_timer;
    boost::asio::steady_timer m_stop_overdue;  // ends the process when the stop cannot start
    // As otpboxd started: [hsm] changes need a restart, and a signal reads
    // it off the control strand, where m_config may be replaced meanwhile.
    const std::chrono::milliseconds m_call_timeout;
    std::atomic<bool> m_stop_begun{false};  // by a signal or a fatal error, whichever came first
    // The longest a begun stop may take (stop_limit), watched by a thread of
    // its own: the io_context's threads may all be held by then.
    const std::chrono::milliseconds m_stop_limit;
    std::thread m_stop_watch;
    std::mutex m_stop_watch_mutex;
    std::condition_variable m_stop_watch_wake;
    bool m_stop_ended = false;                              // by m_stop_watch_mutex
    std::unique_ptr<detail::InstanceLock> m_instance_lock;  // outlives the database
    std::unique_ptr<Database> m_database;
    std::shared_ptr<hsm::Hsm> m_hsm;
    std::unique_ptr<Serving> m_serving;
    Metrics m_metrics;
    std::set<std::string> m_reported_missing;
    std::string m_api_error;  // why a provisioned daemon could not start its API, as logged
    std::map<std::string, std::string> m_modem_states;        // by modem name, as last logged
    std::map<std::string, std::string> m_modem_lock_reasons;  // of sim_locked, as last logged
    std::map<std::string, std::size_t> m_modem_resets;        // by modem name, as last logged
    detail::PollTasks m_tasks;
    bool m_task_stuck = false;  // a poll task still in the HSM when run() ended
    std::map<std::string, unsigned> m_key_versions;  // by key base, as last logged
    std::size_t m_stuck = 0;  // requests abandoned at their deadline, still running at the end
    std::uint64_t m_evicted_logged = 0;  // evictions counted in the log
    std::uint64_t m_refused_logged = 0;  // refused handshakes counted in the log
    std::size_t m_stuck_logged = 0;      // stuck requests as last logged
    std::string m_hsm_state = "ok";      // as last logged
    bool m_sync_failure_logged = false;
    std::atomic<bool> m_database_was_ok{true};  // the last health check's answer
    std::string m_reported_error;  // the last poll problem logged, so it is logged once
    detail::Fingerprint m_fingerprint;
    // While serving: the configuration the server's TLS context was last made
    // from (null: Serving::config), and the keys changed since serving began
    // that only a restart applies, as last logged.
    std::shared_ptr<const Config> m_tls_config;
    // Written on m_control under m_restart_mutex; health reads it under the
    // mutex on any thread.
    std::vector<std::string> m_restart_needed;
    mutable std::mutex m_restart_mutex;
    std::int64_t m_sim_pins_version = 0;
    // The last anchor written; the one a missing anchor file is checked
    // against. Used on m_control only.
    std::optional<AuditAnchor> m_anchor;
    std::string m_anchor_mismatch;  // the anchor last found not followed, as logged; m_control only
    mutable std::mutex m_audit_mutex;  // health reads on any thread
    std::string m_audit_problem;       // under m_audit_mutex
    bool m_stopping = false;
    std::exception_ptr m_fatal;
};

void Daemon::Impl::check_hsm(std::vector<std::string>& missing) {
    const auto& hsm_config = m_config->hsm;
    if (!fs::exists(hsm_config.module_path)) {
        throw FatalError("hsm.module: no PKCS#11 module at " + hsm_config.module_path.string());
    }
    if (!fs::exists(hsm_config.pin_file)) {
        missing.push_back("the HSM user PIN file " + hsm_config.pin_file.string());
        return;
    }
    try {
        (void)hsm::read_pin_file(hsm_config.pin_file);
    } catch (const hsm::HsmError& error) {
        throw FatalError(std::string("hsm.pin_file: ") + error.what());
    }
    if (!m_hsm) {
        try {
            m_hsm = hsm::Hsm::open(hsm_config);
        } catch (const hsm::HsmError& error) {
            if (error.fault() == hsm::Fault::pin) {
                throw FatalError(std::string("HSM login refused: ") + error.what());
            }
            missing.push_back(std::string("the HSM token: ") + error.what());
            return;
        }
    }
    for (const auto& label : secret_key_labels()) {
        if (!m_hsm->has_key(label)) {
            missing.push_back("the HSM key " + label);
        }
    }
}

// A pair under api.key_label stands in for the api.key file.
void Daemon::Impl::check_tls_key(std::vector<std::string>& missing) {
    const auto& label = m_config->api.key_label;
    if (label.empty() || !m_hsm) {
        return;
    }
    try {
        if (auto problem = detail::hsm_tls_key_problem(*m_hsm, label)) {
            missing.push_back(std::move(*problem));
        }
    } catch (const hsm::HsmError& error) {
        missing.push_back(std::string("the HSM token: ") + error.what());
    }
}

std::vector<std::string> Daemon::Impl::missing_parts() {
    std::vector<std::string> missing;
    const auto& api = m_config->api;
    const auto need_file = [&](const fs::path& file, const std::string& what) {
        if (file.empty() || !fs::exists(file)) {
            missing.push_back(what + (file.empty() ? "" : " " + file.string()));
        }
    };
    need_file(api.ca_file, "the portal CA (api.ca)");
    need_file(api.certificate_file, "the TLS certificate (api.certificate)");
    if (api.key_label.empty()) {
        need_file(api.key_file, "the TLS key (api.key)");
    }
    if (api.clients.empty()) {
        missing.push_back("an allowed client subject ([[api.clients]] or api.clients_file)");
    }
    check_hsm(missing);
    check_tls_key(missing);
    return missing;
}

// Unprovisioned, the file is read again before each look: a console step may
// have added a key or a clients file. A file that does not load leaves the
// previous reading in force.
void Daemon::Impl::reread_config() {
    if (m_config->file.empty()) {
        return;
    }
    try {
        m_config = std::make_shared<const Config>(load_config(m_config->file));
        m_reported_error.clear();
    } catch (const ConfigError& error) {
        warn_once("config_unreadable", error);
    }
}

void Daemon::Impl::try_start() {
    // Taken before anything is read, so that a change made meanwhile shows
    // up at the first poll while serving.
    auto seen = detail::fingerprint(watched_files(*m_config));
    reread_config();
    auto missing = missing_parts();
    if (missing.empty()) {
        try {
            start_serving();
            m_fingerprint = stamps_for(std::move(seen), *m_config);
            m_api_error.clear();
            return;
        } catch (const ListenError& error) {
            // The port in use, or an address this machine does not have: the
            // appliance is provisioned, its surroundings are not ready.
            report_api_error(error.what());
        } catch (const std::exception& error) {
            // A certificate that does not fit the key: a console step fixes
            // it, so the daemon stays up.
            missing.push_back(std::string("a working API: ") + error.what());
        }
    }
    report_missing(missing);
}

// Logged when it changes; tried again at every poll.
void Daemon::Impl::report_api_error(const std::string& error) {
    if (error != m_api_error) {
        spdlog::warn("event=api_not_started error=\"{}\" retry=every_poll", quotable(error));
        m_api_error = error;
    }
}

void Daemon::Impl::report_missing(const std::vector<std::string>& missing) {
    const std::set<std::string> now_missing(missing.begin(), missing.end());
    if (now_missing != m_reported_missing && !now_missing.empty()) {
        std::string list;
        for (const auto& part : missing) {
            list += (list.empty() ? "" : "; ") + part;
        }
        spdlog::warn("event=unprovisioned missing=\"{}\"", quotable(list));
    }
    m_reported_missing = now_missing;
}

void Daemon::Impl::start_serving() {
    m_sim_pins_version = sim_pins_version(*m_database);
    auto serving = make_serving();
    auto pins =
        *with_stored_pins(*serving->config, *m_database, *serving->secrets, [] { return true; });
    log_unusable_pins(pins);
    serving->running_modems = std::move(pins.modems);

    // m_serving is set before the first request can arrive, and reset only
    // when the server never started.
    m_serving = std::move(serving);
    try {
        m_serving->modems->restart(m_serving->running_modems);
        try {
            m_serving->server->start();
        } catch (const std::system_error& error) {
            throw ListenError(error.what());
        }
        // A request held by an HSM call that overran gets its 503 then.
        m_hsm->set_overrun_listener(m_serving->server->overrun_notice());
    } catch (...) {
        m_serving.reset();
        throw;
    }
    spdlog::info("event=serving listen={} port={} modems={} clients={}", m_config->api.listen,
                 m_serving->server->port(), m_serving->running_modems.size(),
                 m_config->api.clients.size());
    // At once, so that a log cut off while otpboxd was stopped shows now.
    write_anchor_now();
    schedule_anchor();
}

// The server comes first: its TLS settings are what most often still fails
// (a certificate for another key), and nothing else is opened in vain then.
std::unique_ptr<Serving> Daemon::Impl::make_serving() {
    auto serving = std::make_unique<Serving>();
    serving->config = m_config;
    serving->hsm = m_hsm;
    serving->identity = std::make_shared<detail::TlsIdentity>(m_hsm, m_config->hsm.call_timeout);
    const auto& api = serving->config->api;
    serving->server = std::make_unique<api::Server>(
        m_io, api.listen, api.port, serving->identity->tls_config(api), api.limits,
        [this](const api::Request& request) { return handle(request); });
    serving->server->set_access_log([this](const api::AccessEntry& entry) { log_request(entry); });

    serving->secrets = std::make_shared<Secrets>(m_hsm);
    serving->audit = std::make_unique<AuditLog>(*m_database, *serving->secrets);
    serving->queue =
        std::make_unique<gsm::SmsQueue>(m_database->path(), serving->secrets->sms_sealer(),
                                        [clock = m_clock] { return clock->now(); });
    serving->modems = std::make_unique<detail::ModemSlot>(*serving->queue);
    serving->context =
        std::make_unique<Context>(Context{*m_database, *serving->secrets, *m_clock,
                                          *serving->config, *serving->queue, *serving->audit});
    serving->phones = std::make_unique<PhoneService>(*serving->context);
    serving->cards = std::make_unique<PincardService>(*serving->context);
    serving->challenges = std::make_unique<ChallengeService>(*serving->context, *serving->cards);
    serving->idempotency = std::make_unique<Idempotency>(*serving->context);
    serving->router = std::make_unique<Router>(RouterParts{
        *serving->context, *serving->phones, *serving->cards, *serving->challenges,
        *serving->idempotency, [this] { return health(); }, [this] { return metrics(); },
        [this](const std::string& user, const std::string& actor) { erase_user(user, actor); }});
    return serving;
}

void Daemon::Impl::schedule_poll() {
    m_poll.expires_after(kProvisioningPoll);
    m_poll.async_wait([this](const boost::system::error_code& error) {
        if (!error && !m_stopping) {
            on_poll();
        }
    });
}

// work runs as a poll task; what it returns (nothing, or what it found to
// log or to hand on) runs on the control strand afterwards, unless the
// daemon has stopped by then. A task never logs itself: once run() ended
// the log may be shut down under it.
void Daemon::Impl::start_task(const std::string& name, TaskWork work) {
    (void)m_tasks.start(name, [this, name, work = std::move(work)](const auto& task) {
        std::function<void()> then;
        try {
            then = work(task);
        } catch (...) {
            // Thrown again on the strand, where what the work and what its
            // result throw are handled alike.
            then = [failure = std::current_exception()] { std::rethrow_exception(failure); };
        }
        if (then) {
            // As on_poll does: nothing may leave a handler, or it ends
            // io_context::run() and with it otpboxd (std::terminate).
            boost::asio::post(
                m_control, [this, event = "poll_task_failed task=" + name, then = std::move(then)] {
                    if (m_stopping) {
                        return;
                    }
                    try {
                        then();
                    } catch (const FatalError& error) {
                        stop_for_fatal(std::current_exception(), error.what());
                    } catch (const std::exception& error) {
                        warn_once(event, error);
                    }
                });
        }
    });
}

// For the technician console (docs/console.md): it has no client
// certificate for the API, so the daemon tells it in a file.
void Daemon::Impl::write_status() {
    if (m_config->file.empty()) {
        return;
    }
    try {
        auto report = health();
        boost::json::array missing;
        for (const auto& part : m_reported_missing) {
            missing.emplace_back(part);
        }
        boost::json::object status{{"provisioned", m_serving != nullptr},
                                   {"missing", m_serving ? boost::json::array{} : missing},
                                   {"health", std::move(report.body)}};
        if (!m_serving && !m_api_error.empty()) {
            status["api_error"] = m_api_error;
        }
        if (m_serving && !m_restart_needed.empty()) {
            status["restart_needed"] =
                boost::json::array(m_restart_needed.begin(), m_restart_needed.end());
        }
        write_status_file(status_file_for(m_config->file), status);
    } catch (const std::exception& error) {
        warn_once("status_file", error);
    }
}

// A FatalError (a wrong HSM PIN, a PIN file others can read) stops the
// daemon and then ends run(). Anything else is logged and looked at again
// at the next poll.
void Daemon::Impl::on_poll() {
    try {
        if (m_serving) {
            poll_serving();
        } else {
            try_start();
        }
    } catch (const FatalError& error) {
        stop_for_fatal(std::current_exception(), error.what());
        return;
    } catch (const std::exception& error) {
        warn_once("poll_failed", error);
    }
    write_status();
    schedule_poll();
}

void Daemon::Impl::poll_serving() {
    log_sync_failure();
    log_hsm_state();
    look_for_lost_token();
    reload_if_changed();
    // Before a restart, so that the state that made the technician act
    // (a locked SIM) is logged.
    log_modem_changes();
    log_key_versions();
    log_evictions();
    log_refused_handshakes();
    log_stuck_requests();
    restart_modems_if_pins_changed();
}

// Connections closed in their handshake to make room are a sign of a flood
// (or of max_connections set too low): one WARN line a poll while it lasts.
void Daemon::Impl::log_evictions() {
    const auto evicted = m_serving->server->evicted();
    if (evicted > m_evicted_logged) {
        spdlog::warn("event=connections_evicted count={} total={} reason=max_connections",
                     evicted - m_evicted_logged, evicted);
        m_evicted_logged = evicted;
    }
}

// Clients refused in the handshake (no certificate, another CA, a subject
// off the list, an old protocol): one INFO line a poll while they come, with
// the last one's reason, so that an operator can tell why a portal does not
// get in without a line per attempt of a scanner.
void Daemon::Impl::log_refused_handshakes() {
    const auto handshakes = m_serving->server->handshakes();
    if (handshakes.refused > m_refused_logged) {
        const auto reason = quotable(handshakes.last_refusal);
        spdlog::info("event=handshakes_refused count={} total={} last_reason=\"{}\"",
                     handshakes.refused - m_refused_logged, handshakes.refused, reason);
        m_refused_logged = handshakes.refused;
    }
}

// A failed sync of the database is final (docs/architecture.md, "Commits
// and their sync"): every request fails until a restart. Said once.
void Daemon::Impl::log_sync_failure() {
    if (m_sync_failure_logged) {
        return;
    }
    if (const auto failure = m_database->sync_failure()) {
        spdlog::error("event=database_sync_failed detail=\"{}\" action=\"restart otpboxd\"",
                      quotable(*failure));
        m_sync_failure_logged = true;
    }
}

// Requests answered 503 at their deadline whose handlers still wait (in a
// stalled HSM): logged when their number changes, WARN while there are any.
void Daemon::Impl::log_stuck_requests() {
    const auto stuck = m_serving->server->stuck();
    if (stuck == m_stuck_logged) {
        return;
    }
    if (stuck > 0) {
        spdlog::warn("event=requests_stuck count={}", stuck);
    } else {
        spdlog::info("event=requests_stuck count=0");
    }
    m_stuck_logged = stuck;
}

// The version of each key new records are made with, logged when it
// changes (a rotation at the console), so an operator sees when it counted.
void Daemon::Impl::log_key_versions() {
    start_task("key_version_lookup", [this, secrets = m_serving->secrets](const auto& task) {
        std::vector<std::pair<std::string, unsigned>> versions;
        for (const auto base : {hsm::keys::kCardKdk, hsm::keys::kOtpMac, hsm::keys::kDataEnc,
                                hsm::keys::kDataIndex, hsm::keys::kAuditMac}) {
            if (!task.begin_call()) {
                break;
            }
            try {
                versions.emplace_back(base, secrets->key_version(base));
            } catch (const std::exception&) {
                break;  // the HSM's state is logged by the poll
            }
        }
        return [this, versions = std::move(versions)] {
            for (const auto& [base, version] : versions) {
                auto& known = m_key_versions[base];
                if (version != known) {
                    spdlog::info("event=key_version key={} version={}", base, version);
                    known = version;
                }
            }
        };
    });
}

// The HSM leaving "ok" (the token gone, calls overrunning) is one WARN line
// and its return one INFO line, so that an outage has a start and an end in
// the log.
void Daemon::Impl::log_hsm_state() {
    const auto health = m_hsm->last_health();
    if (health.state == m_hsm_state) {
        return;
    }
    if (health.ok) {
        spdlog::info("event=hsm_state state=ok was={}", m_hsm_state);
    } else {
        spdlog::warn("event=hsm_state state={} was={} detail=\"{}\"", health.state, m_hsm_state,
                     quotable(health.detail));
    }
    m_hsm_state = health.state;
}

// Finding a lost token again may wait in the module: on a task, and only
// the poll does it, so that health and metrics never wait. A PIN the token
// refuses is fatal, as at the start: tried again each second, it would lock.
void Daemon::Impl::look_for_lost_token() {
    const auto seen = m_hsm->last_health();
    if (seen.ok || seen.state == "stalled") {
        return;
    }
    start_task("hsm_probe", [hsm = m_hsm](const auto& task) -> std::function<void()> {
        if (!task.begin_call()) {
            return nullptr;
        }
        try {
            hsm->look_for_token();
        } catch (const hsm::HsmError& error) {
            if (error.fault() == hsm::Fault::pin) {
                throw FatalError(std::string("HSM login refused: ") + error.what());
            }
        }
        return nullptr;
    });
}

// A modem that leaves "ready" (failed, SIM locked) is a degraded part: one
// WARN line when it changes, INFO when it is back. A reset after a +CMGS
// whose OK never came is usually over before the next poll, so the state
// does not show it: one WARN line a poll while such resets are counted. The
// lower layer only reports; the daemon is the edge that logs.
void Daemon::Impl::log_modem_changes() {
    for (const auto& modem : m_serving->modems->health()) {
        auto& resets = m_modem_resets[modem.name];
        if (modem.resets > resets) {
            spdlog::warn("event=modem_reset modem={} count={} total={} reason=\"{}\"", modem.name,
                         modem.resets - resets, modem.resets, quotable(modem.last_reset));
            resets = modem.resets;
        }
        auto& known = m_modem_states[modem.name];
        // A SIM locked again for another reason is news: the pool restarted
        // for a new PIN passes through "stopped" and "initialising", which are
        // not logged, so the state alone would look unchanged when the SIM
        // that asked for a PIN now refuses the one stored.
        auto& lock_reason = m_modem_lock_reasons[modem.name];
        const bool same_lock = modem.state != "sim_locked" || modem.last_error == lock_reason;
        // Passing states, and a pool stopped on purpose (a new SIM PIN).
        if ((modem.state == known && same_lock) || modem.state == "initialising" ||
            modem.state == "stopped") {
            continue;
        }
        lock_reason = modem.state == "sim_locked" ? modem.last_error : "";
        if (modem.state == "ready") {
            if (!known.empty()) {
                spdlog::info("event=modem_state modem={} state=ready was={}", modem.name, known);
            }
        } else {
            spdlog::warn("event=modem_state modem={} state={} was={} error=\"{}\"", modem.name,
                         modem.state, known.empty() ? "starting" : known,
                         quotable(modem.last_error));
        }
        known = modem.state;
    }
}

// A changed file means the whole configuration is read again. The TLS
// settings and allow-list are handed to the server for new connections when
// they, or a file they name, changed; any other setting changed is named in
// one WARN line, since it is taken only at a start. The TLS settings are
// made on a task, since the TLS key may be in the token; a change seen while
// an earlier one is still made waits for the next poll.
void Daemon::Impl::reload_if_changed() {
    auto seen = detail::fingerprint(watched_files(*m_config));
    if (seen == m_fingerprint || m_tasks.running("tls_reload")) {
        return;
    }
    const bool tls_files_changed = files_besides_changed(m_fingerprint, seen, m_config->file);
    try {
        m_config = std::make_shared<const Config>(load_config(m_config->file));
        m_fingerprint = stamps_for(std::move(seen), *m_config);
    } catch (const ConfigError& error) {
        m_fingerprint = std::move(seen);
        spdlog::warn("event=reload_refused error=\"{}\" kept=running_settings",
                     quotable(error.what()));
        return;
    }
    report_restart_needed();
    const auto& tls_running = m_tls_config ? *m_tls_config : *m_serving->config;
    if (!tls_files_changed && !detail::tls_settings_differ(tls_running, *m_config)) {
        return;
    }
    start_task("tls_reload",
               [this, identity = m_serving->identity,
                config = m_config](const auto& task) -> std::function<void()> {
                   if (!task.begin_call()) {
                       return nullptr;
                   }
                   std::optional<api::TlsConfig> tls;
                   std::exception_ptr failure;
                   try {
                       tls = identity->tls_config(config->api);
                   } catch (const std::exception&) {
                       failure = std::current_exception();
                   }
                   return [this, tls = std::move(tls), failure, config] {
                       try {
                           if (failure) {
                               std::rethrow_exception(failure);
                           }
                           m_serving->server->reload(*tls);
                       } catch (const std::exception& error) {
                           spdlog::warn(
                               "event=tls_reload_failed error=\"{}\" kept=running_settings",
                               quotable(error.what()));
                           return;
                       }
                       m_tls_config = config;
                       spdlog::info("event=tls_reloaded clients={}", config->api.clients.size());
                   };
               });
}

// The settings read since serving began that differ from those it runs
// with, other than the TLS ones: one WARN line when they change, so that an
// operator who edited sms.template or [pincard] is told it takes a restart
// instead of seeing nothing happen. The status file names them too.
void Daemon::Impl::report_restart_needed() {
    auto keys = detail::settings_needing_restart(*m_serving->config, *m_config);
    if (keys == m_restart_needed) {
        return;
    }
    std::string list;
    for (const auto& key : keys) {
        list += (list.empty() ? "" : ",") + key;
    }
    if (keys.empty()) {
        spdlog::info("event=restart_not_needed reason=settings_as_running");
    } else {
        spdlog::warn("event=restart_needed keys=\"{}\"", list);
    }
    const std::lock_guard lock(m_restart_mutex);
    m_restart_needed = std::move(keys);
}

// The version is read before the PINs, so a PIN stored meanwhile shows up
// at the next poll. A store that leaves every modem's PIN as it runs (the
// same PIN again, or one the configuration overrides) restarts nothing: a
// refused PIN is not tried a second time. The PINs are opened on a task
// (the HSM decrypts them); the modems restart on the strand once they are.
void Daemon::Impl::restart_modems_if_pins_changed() {
    const auto version = sim_pins_version(*m_database);
    if (version == m_sim_pins_version) {
        return;
    }
    start_task("sim_pins",
               [this, version, config = m_serving->config,
                secrets = m_serving->secrets](const auto& task) -> std::function<void()> {
                   auto found = with_stored_pins(*config, *m_database, *secrets,
                                                 [&task] { return task.begin_call(); });
                   if (!found) {
                       return nullptr;  // cut short by the stop
                   }
                   return [this, version, pins = std::move(*found)]() mutable {
                       log_unusable_pins(pins);
                       m_sim_pins_version = version;
                       if (same_sim_pins(pins.modems, m_serving->running_modems)) {
                           return;
                       }
                       // The old pool's resets are logged once it has stopped (a
                       // send it waited for may have added one). The new pool
                       // counts sent, failed and resets from zero, so the
                       // metrics' counters go down.
                       m_serving->modems->stop();
                       log_modem_changes();
                       m_serving->modems->restart(pins.modems);
                       m_modem_resets.clear();
                       m_serving->running_modems = std::move(pins.modems);
                       spdlog::info("event=modems_restarted reason=sim_pin modems={}",
                                    m_serving->running_modems.size());
                   };
               });
}

void Daemon::Impl::warn_once(const std::string& event, const std::exception& error) {
    const auto line = "event=" + event + " error=\"" + quotable(error.what()) + "\"";
    if (line != m_reported_error) {
        spdlog::warn("{}", line);
        m_reported_error = line;
    }
}

// The signal is taken off the control strand, since a poll there may sit in
// a stalled HSM call for as long as the module keeps it.
void Daemon::Impl::on_signal(int signal) {
    spdlog::info("event=stopping signal={}", signal);
    begin_stop("");
}

// A FatalError met on the control strand (the token refusing the PIN on a
// reconnect) takes the stop a signal takes: the server waits out its
// handlers before run() counts the stuck ones, the modem pool stops, the
// audit anchor is written. Then run() throws it, whatever is still in the
// HSM (docs/architecture.md, exit statuses). Polls and task results already
// queued on the strand do nothing from now on.
void Daemon::Impl::stop_for_fatal(std::exception_ptr fatal, const std::string& what) {
    if (!m_fatal) {
        m_fatal = std::move(fatal);
    }
    m_stopping = true;
    // Said while serving, since the stop may then take a while; one that
    // never served ends with the fatal error's line alone.
    if (m_serving) {
        spdlog::info("event=stopping reason=fatal");
    }
    begin_stop(what);
}

// The stop begins once, for a signal or a fatal error, whichever comes
// first. It waits its turn on the strand; when it cannot start within the
// HSM's call deadline and 5 s, the process ends without it (status 1): a
// SIGTERM always ends otpboxd, and a fatal error is still said.
void Daemon::Impl::begin_stop(const std::string& fatal_error) {
    if (m_stop_begun.exchange(true)) {
        return;
    }
    m_stop_overdue.expires_after(m_call_timeout + std::chrono::seconds(5));
    m_stop_overdue.async_wait([fatal_error](const boost::system::error_code& error) {
        if (error) {
            return;
        }
        spdlog::error(
            "event=stop_overdue reason=\"the daemon's own work is held up, most "
            "likely in an HSM call\"");
        if (!fatal_error.empty()) {
            spdlog::critical("event=fatal error=\"{}\"", quotable(fatal_error));
        }
        // Flushed, not shut down: threads still held may log meanwhile.
        spdlog::default_logger_raw()->flush();
        std::fflush(nullptr);
        std::_Exit(1);
    });
    watch_the_stop(fatal_error);
    boost::asio::post(m_control, [this] { stop(); });
}

// Once begun, the stop waits for handlers, a modem's send and the database,
// each with a deadline (docs/architecture.md), but a modem's worker opening
// the next SMS waits in the HSM for as long as the module keeps the call,
// and stopping the modem pool waits for it. When the whole stop has not
// ended within the sum of those deadlines and 5 s, otpboxd ends without it:
// status 3, as for a stop that left a call in the HSM, or 1 after a fatal
// error, which is said first.
void Daemon::Impl::watch_the_stop(const std::string& fatal_error) {
    m_stop_watch = std::thread([this, fatal_error] {
        std::unique_lock lock(m_stop_watch_mutex);
        if (m_stop_watch_wake.wait_for(lock, m_stop_limit, [this] { return m_stop_ended; })) {
            return;
        }
        spdlog::error(
            "event=stop_unfinished within_ms={} reason=\"the stop is held up, most likely by an "
            "HSM call that does not return\"",
            m_stop_limit.count());
        if (!fatal_error.empty()) {
            spdlog::critical("event=fatal error=\"{}\"", quotable(fatal_error));
        }
        spdlog::default_logger_raw()->flush();
        std::fflush(nullptr);
        std::_Exit(fatal_error.empty() ? 3 : 1);
    });
}

void Daemon::Impl::end_the_stop_watch() {
    {
        const std::lock_guard lock(m_stop_watch_mutex);
        m_stop_ended = true;
    }
    m_stop_watch_wake.notify_all();
    if (m_stop_watch.joinable()) {
        m_stop_watch.join();
    }
}

void Daemon::Impl::stop() {
    m_stop_overdue.cancel();
    m_signals.cancel();  // still awaited when a fatal error began the stop
    m_stopping = true;
    m_tasks.stop();
    m_poll.cancel();
    m_anchor_timer.cancel();
    stop_serving();
}

// Known shortcoming: stopping the modem pool waits for each worker, and a
// worker opening the next SMS with the HSM waits as long as that call does;
// a module that never returns holds the stop here until the stop's watch
// ends the process (watch_the_stop), and the audit anchor is not written.
void Daemon::Impl::stop_serving() {
    if (!m_serving) {
        return;
    }
    m_serving->server->stop();
    m_serving->modems->stop();
    write_anchor_now();
}

// A trigger runs inside the daemon's own statements: one that resets a
// lock, a challenge's attempts or drops audit rows would act unseen. The
// console's restore refuses such a backup; a file changed by hand is
// refused here.
void Daemon::Impl::refuse_foreign_objects() {
    const auto names = m_database->read([&] {
        std::string found;
        auto rows = m_database->prepare(
            "SELECT type || ' ' || name FROM sqlite_master WHERE type IN ('trigger', 'view') "
            "ORDER BY type, name");
        while (rows.step()) {
            found += (found.empty() ? "" : ", ") + rows.text(0);
        }
        return found;
    });
    if (names.empty()) {
        return;
    }
    throw DatabaseError("database " + m_config->database.string() + " holds " + names +
                        ", which otpbox never makes; restore a backup with the console");
}

// Before the new anchor replaces the one taken before, the log must still
// follow on from that one: otherwise rows were cut off or changed since,
// and writing the shortened log's last row would hide it.
void Daemon::Impl::write_anchor_now() {
    if (!m_serving) {
        return;
    }
    try {
        // A request stuck in the HSM may hold the database: the anchor is
        // then left for the next time (at a stop, the next start's).
        std::optional<AuditAnchor> anchor;
        std::string problem;
        std::string against;
        if (!m_database->within(m_call_timeout, [&] {
                anchor = m_serving->audit->latest();
                problem = anchor_problem(*anchor, against);
            })) {
            spdlog::warn("event=audit_anchor_skipped reason=\"the database is held\"");
            return;
        }
        report_anchor_problem(problem, against);
        if (!problem.empty()) {
            return;
        }
        // Logged also beside a file: the log leaves the box, the file does not.
        spdlog::info("event=audit_anchor seq={} mac={}", anchor->sequence, anchor->mac_hex);
        if (const auto& file = m_serving->config->audit_anchor_file; !file.empty()) {
            write_anchor(file, *anchor);
        }
        m_anchor = anchor;
    } catch (const std::exception& error) {
        spdlog::error("event=audit_anchor_failed error=\"{}\"", quotable(error.what()));
    }
}

// Why the log does not follow on from the anchor taken before ("" when it
// does): the anchor file's, or without one (or when it is gone) the one
// this daemon took last. against names that anchor.
// Known shortcoming: only the anchor's row and MAC and the count of rows
// since are checked, reads alone; the MACs of the rows since are left to
// the console's 'audit verify', as checking them here would take an HSM
// call a row on the control strand.
std::string Daemon::Impl::anchor_problem(const AuditAnchor& latest, std::string& against) {
    std::optional<AuditAnchor> earlier = m_anchor;
    if (const auto& file = m_serving->config->audit_anchor_file; !file.empty()) {
        const auto found = load_anchor_file(file);
        if (found.state == AnchorFile::State::unreadable) {
            against = "unreadable " + file.string();
            return "the anchor file " + file.string() + " is unreadable: " + found.problem;
        }
        if (found.state == AnchorFile::State::ok) {
            earlier = found.anchor;
        }
    }
    if (!earlier) {
        return {};
    }
    against = std::to_string(earlier->sequence) + " " + earlier->mac_hex;
    return m_serving->audit->follows_from(*earlier, latest);
}

// Logged once for each anchor the log does not follow on from, not at
// every minute: the problem's words change as the log grows on. Health and
// the status file show the problem meanwhile.
void Daemon::Impl::report_anchor_problem(const std::string& problem, const std::string& against) {
    const auto mismatch = problem.empty() ? std::string() : against;
    if (mismatch != m_anchor_mismatch) {
        if (!problem.empty()) {
            spdlog::error(
                "event=audit_anchor_mismatch problem=\"{}\" action=\"the anchor is kept; "
                "run 'audit verify' on the console\"",
                quotable(problem));
        } else {
            spdlog::info("event=audit_anchor_matches");
        }
        m_anchor_mismatch = mismatch;
    }
    std::lock_guard lock(m_audit_mutex);
    m_audit_problem = problem;
}

std::string Daemon::Impl::audit_problem() const {
    std::lock_guard lock(m_audit_mutex);
    return m_audit_problem;
}

void Daemon::Impl::schedule_anchor() {
    m_anchor_timer.expires_after(kAnchorInterval);
    m_anchor_timer.async_wait([this](const boost::system::error_code& error) {
        if (!error) {
            write_anchor_now();
            schedule_anchor();
        }
    });
}

HealthReport Daemon::Impl::health() {
    HealthReport report;
    json::object body;
    const auto hsm_health = m_hsm ? m_hsm->last_health() : hsm::HsmHealth{false, "absent", ""};
    const auto checked = m_database ? m_database->healthy() : std::optional<bool>(false);
    // Held by a request (one waiting for the HSM): the last answer stands.
    bool database_ok = checked.value_or(m_database_was_ok);
    m_database_was_ok = database_ok;
    json::object hsm_part{{"ok", hsm_health.ok}, {"state", hsm_health.state}};
    if (!hsm_health.ok && !hsm_health.detail.empty()) {
        hsm_part["detail"] = hsm_health.detail;
    }
    body["hsm"] = std::move(hsm_part);
    json::object database{{"ok", database_ok}};
    if (!checked) {
        database["detail"] = "not checked: held by a request for over 200 ms";
    }
    if (!database_ok && m_database) {
        if (const auto failure = m_database->sync_failure()) {
            database["detail"] =
                "a sync failed, reads and writes are refused until otpboxd "
                "restarts: " +
                *failure;
        } else if (const auto fault = m_database->write_fault()) {
            database["detail"] = "writes fail: " + *fault;
        }
    }
    body["provisioned"] = m_serving != nullptr;

    bool degraded = false;
    json::array modems;
    if (m_serving) {
        for (const auto& modem : m_serving->modems->health()) {
            degraded = degraded || modem.state != "ready";
            modems.push_back(json::object{{"name", modem.name},
                                          {"state", modem.state},
                                          {"registration", modem.registration},
                                          {"signal_rssi", modem.signal_rssi},
                                          {"sent", modem.sent},
                                          {"failed", modem.failed},
                                          {"last_error", modem.last_error},
                                          {"resets", modem.resets},
                                          {"last_reset", modem.last_reset}});
        }
        // The queue's tables are read through its own connection: a
        // database that lost them (a foreign file restored) is down, and
        // health still answers.
        try {
            const auto stats = m_serving->queue->stats();
            json::object queue{{"depth", stats.depth}, {"expired", stats.expired}};
            queue["oldest_age_seconds"] =
                stats.oldest_age ? json::value(stats.oldest_age->count()) : json::value(nullptr);
            body["queue"] = std::move(queue);
        } catch (const std::exception& error) {
            database_ok = false;
            database["ok"] = false;
            database["detail"] = std::string("the SMS queue cannot be read: ") + error.what();
        }
    }
    body["database"] = std::move(database);
    // The audit log no longer reaching the anchor taken before it: rows cut
    // off or changed. Serving goes on; the technician has to look.
    const auto audit_problem = this->audit_problem();
    json::object audit{{"ok", audit_problem.empty()}};
    if (!audit_problem.empty()) {
        audit["detail"] = audit_problem;
    }
    body["audit"] = std::move(audit);
    degraded = degraded || !audit_problem.empty();
    // Settings changed in the file that only a restart applies; serving goes
    // on with those it started with, so this alone degrades nothing.
    {
        const std::lock_guard lock(m_restart_mutex);
        body["restart_needed"] = json::array(m_restart_needed.begin(), m_restart_needed.end());
    }
    degraded = degraded || !m_serving || m_serving->config->modems.empty();
    body["modems"] = std::move(modems);
    const bool synced = clock_synchronized();
    body["clock"] = json::object{{"synchronized", synced}};
    body["version"] = kVersion;

    const bool down = !hsm_health.ok || !database_ok || !m_serving;
    body["status"] = down ? "down" : (degraded || !synced ? "degraded" : "ok");
    report.status = down ? 503 : 200;
    report.body = std::move(body);
    return report;
}

std::string Daemon::Impl::metrics() {
    auto out = m_metrics.render();
    const bool hsm_ok = m_hsm && m_hsm->last_health().ok;
    append_metric(out, "otpbox_hsm_up", "1 when the HSM answers", "gauge", "", hsm_ok ? 1 : 0);
    if (m_database) {
        const auto commits = m_database->commit_counts();
        append_metric(out, "otpbox_db_commits_total", "transactions committed", "counter", "",
                      static_cast<double>(commits.commits));
        append_metric(out, "otpbox_db_syncs_total",
                      "syncs that made commits durable; commits share them", "counter", "",
                      static_cast<double>(commits.syncs));
    }
    if (m_serving) {
        append_metric(out, "otpbox_connections_evicted_total",
                      "connections closed in their handshake at max_connections", "counter", "",
                      static_cast<double>(m_serving->server->evicted()));
        const auto handshakes = m_serving->server->handshakes();
        append_metric(out, "otpbox_tls_handshakes_total",
                      "handshakes: full or resumed from a session ticket, or refused", "counter",
                      "kind=\"full\"", static_cast<double>(handshakes.full));
        append_metric(out, "otpbox_tls_handshakes_total", "", "counter", "kind=\"resumed\"",
                      static_cast<double>(handshakes.resumed));
        append_metric(out, "otpbox_tls_handshakes_total", "", "counter", "kind=\"refused\"",
                      static_cast<double>(handshakes.refused));
        append_metric(out, "otpbox_requests_stuck",
                      "requests answered 503 at their deadline whose handlers still wait", "gauge",
                      "", static_cast<double>(m_serving->server->stuck()));
        // Left out while the queue cannot be read; health says why.
        try {
            const auto stats = m_serving->queue->stats();
            append_metric(out, "otpbox_sms_queue_depth", "SMS queued or being sent", "gauge", "",
                          static_cast<double>(stats.depth));
            append_metric(out, "otpbox_sms_queue_oldest_seconds", "age of the oldest queued SMS",
                          "gauge", "",
                          stats.oldest_age ? static_cast<double>(stats.oldest_age->count()) : 0);
            append_metric(out, "otpbox_sms_expired_total",
                          "SMS whose OTP expired before a modem sent them", "counter", "",
                          static_cast<double>(stats.expired));
        } catch (const std::exception&) {
        }
        append_modem_metrics(out, m_serving->modems->health());
    }
    return out;
}

api::Response Daemon::Impl::handle(const api::Request& request) {
    try {
        return m_serving->router->handle(request);
    } catch (const std::exception& error) {
        spdlog::error("event=request_failed route={} error=\"{}\"", route_of(request.target),
                      quotable(error.what()));
        return error_response(500, "internal", "internal error");
    }
}

// Every answer the server gives, also those it gives itself before the
// router sees the request (400, 413, 431): one line and one count each.
void Daemon::Impl::log_request(const api::AccessEntry& entry) {
    m_metrics.count_response(entry.status);
    const auto level = entry.status >= 500 ? spdlog::level::warn : spdlog::level::info;
    spdlog::log(level, "event=request method={} route={} status={} client=\"{}\" us={}",
                method_of(entry.method), route_of(entry.path), entry.status,
                quotable(entry.client_subject), entry.duration.count());
}

void Daemon::Impl::erase_user(const std::string& user, const std::string& actor) {
    const auto now = m_clock->now();
    const auto pseudonym = m_serving->secrets->pseudonym(user);
    m_database->transaction([&] {
        // A user never seen has nothing to erase: the delete makes no row for
        // one, and its audit row says that nothing was there. A known user's
        // row stays after an erase, and so do its lock and its SMS counts: a
        // delete cannot end a lock or start the SMS limits afresh.
        if (!user_known(*m_database, user)) {
            m_serving->audit->record({actor, "user.erase", pseudonym, "unknown"}, now);
            return;
        }
        m_serving->phones->erase(user, actor);
        m_serving->cards->revoke_all(user, actor);
        m_database->prepare("DELETE FROM cell_sets WHERE user_id = ?").bind(1, user).run();
        m_database->prepare("UPDATE challenges SET state = 'burned' WHERE user_id = ?")
            .bind(1, user)
            .run();
        m_serving->audit->record({actor, "user.erase", pseudonym, "ok"}, now);
    });
}

void Daemon::Impl::run() {
    try {
        m_instance_lock = std::make_unique<detail::InstanceLock>(
            detail::InstanceLock::beside(m_config->database));
        m_database = std::make_unique<Database>(m_config->database);
        refuse_foreign_objects();
    } catch (const detail::InstanceLockError& error) {
        throw FatalError(error.what());
    } catch (const DatabaseError& error) {
        throw FatalError(error.what());
    }
    // The stop's watch, once a stop began, ends however run() does; it
    // covers the wait for the poll tasks below.
    class StopWatchEnd {
      public:
        explicit StopWatchEnd(Impl& impl) : m_impl(impl) {}
        StopWatchEnd(const StopWatchEnd&) = delete;
        StopWatchEnd& operator=(const StopWatchEnd&) = delete;
        ~StopWatchEnd() { m_impl.end_the_stop_watch(); }

      private:
        Impl& m_impl;
    } const stop_watch_end(*this);
    m_signals.async_wait([this](const boost::system::error_code& error, int signal) {
        if (!error) {
            on_signal(signal);
        }
    });
    // Before the io_context's threads run, so nothing else touches the state yet.
    on_poll();

    std::vector<std::thread> threads;
    for (unsigned i = 1; i < m_config->api.threads; ++i) {
        threads.emplace_back([this] { m_io.run(); });
    }
    m_io.run();
    for (auto& thread : threads) {
        thread.join();
    }
    m_tasks.stop();
    if (m_serving) {
        m_stuck = m_serving->server->stuck();
    }
    if (m_stuck > 0) {
        // Their handlers still use the services and will post to the
        // io_context when they return: nothing of it may be destroyed.
        spdlog::warn("event=stopped_with_stuck_requests count={}", m_stuck);
    }
    // A task holds the secrets and the HSM: the module must not be
    // finalised under its call. A task begins no HSM call once the stop was
    // asked for, so a timely one ends within one call deadline of the stop
    // (poll_tasks.hpp), whatever it is. With stuck requests nothing is
    // destroyed either way; the tasks are waited for all the same, so that
    // the log names those that are stuck too.
    for (const auto& task : m_tasks.wait(m_call_timeout)) {
        spdlog::warn("event=stopped_with_hsm_call_in_flight what={}", task);
        m_task_stuck = true;
    }
    if (!hsm_call_in_flight()) {
        m_serving.reset();
    }
    // The reason the daemon stopped, whatever is still in the HSM: it always
    // reaches the caller, which logs it and, with a call in flight, ends the
    // process without destroying the daemon.
    if (m_fatal) {
        std::rethrow_exception(m_fatal);
    }
    if (!hsm_call_in_flight()) {
        spdlog::info("event=stopped");
    }
}

Daemon::Daemon(Config config, std::shared_ptr<const Clock> clock)
    : m_impl(std::make_unique<Impl>(std::move(config), std::move(clock))) {}

Daemon::~Daemon() = default;

void Daemon::run() {
    m_impl->run();
}

bool Daemon::hsm_call_in_flight() const {
    return m_impl->hsm_call_in_flight();
}

}  // namespace otpbox::firmware
