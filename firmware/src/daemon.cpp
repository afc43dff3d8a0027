#include "otpbox/firmware/daemon.hpp"

#include <spdlog/spdlog.h>
#include <sys/timex.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include <filesystem>
#include <optional>
#include <set>
#include <thread>

#include "otpbox/firmware/audit_log.hpp"
#include "otpbox/firmware/challenge_service.hpp"
#include "otpbox/firmware/idempotency.hpp"
#include "otpbox/firmware/metrics.hpp"
#include "otpbox/firmware/phone_service.hpp"
#include "otpbox/firmware/pincard_service.hpp"
#include "otpbox/firmware/refusal.hpp"
#include "otpbox/firmware/router.hpp"
#include "otpbox/firmware/version.hpp"
#include "otpbox/gsm/modem_pool.hpp"
#include "otpbox/hsm/error.hpp"
#include "otpbox/hsm/key_labels.hpp"

namespace otpbox::firmware {

namespace {

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

bool clock_synchronized() {
    timex tx{};
    const int state = ::adjtimex(&tx);
    return state != TIME_ERROR && (tx.status & STA_UNSYNC) == 0;
}

std::string route_of(const std::string& target) {
    // Logs name the route, not the user id or serial in the path.
    auto path = target.substr(0, target.find('?'));
    std::string out;
    std::size_t start = 1;
    int index = 0;
    while (start <= path.size()) {
        const auto end = path.find('/', start);
        auto segment = path.substr(start, end - start);
        out += "/" + ((index == 2 && path.rfind("/v1/", 0) == 0) ? std::string("*") : segment);
        ++index;
        if (end == std::string::npos) {
            break;
        }
        start = end + 1;
    }
    return out;
}

}  // namespace

// The parts that exist only once the appliance is provisioned.
struct Serving {
    std::shared_ptr<hsm::Hsm> hsm;
    std::unique_ptr<Secrets> secrets;
    std::unique_ptr<AuditLog> audit;
    std::unique_ptr<gsm::SmsQueue> queue;
    std::unique_ptr<gsm::ModemPool> modems;
    std::unique_ptr<Context> context;
    std::unique_ptr<PhoneService> phones;
    std::unique_ptr<PincardService> cards;
    std::unique_ptr<ChallengeService> challenges;
    std::unique_ptr<Idempotency> idempotency;
    std::unique_ptr<Router> router;
    std::unique_ptr<api::Server> server;
};

class Daemon::Impl {
  public:
    Impl(Config config, std::shared_ptr<const Clock> clock)
        : m_config(std::move(config)),
          m_clock(clock ? std::move(clock) : std::make_shared<SystemClock>()),
          m_signals(m_io, SIGINT, SIGTERM),
          m_poll(m_io),
          m_anchor_timer(m_io) {}

    void run();

  private:
    std::vector<std::string> missing_parts();
    void check_hsm(std::vector<std::string>& missing);
    void try_start();
    void start_serving();
    void stop_serving();
    void write_anchor_now();
    void schedule_anchor();
    HealthReport health();
    std::string metrics();
    api::Response handle(const api::Request& request);
    void erase_user(const std::string& user, const std::string& actor);

    Config m_config;
    std::shared_ptr<const Clock> m_clock;
    boost::asio::io_context m_io;
    boost::asio::signal_set m_signals;
    boost::asio::steady_timer m_poll;
    boost::asio::steady_timer m_anchor_timer;
    std::unique_ptr<Database> m_database;
    std::shared_ptr<hsm::Hsm> m_hsm;
    std::unique_ptr<Serving> m_serving;
    Metrics m_metrics;
    std::set<std::string> m_reported_missing;
};

void Daemon::Impl::check_hsm(std::vector<std::string>& missing) {
    const auto& hsm_config = m_config.hsm;
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

std::vector<std::string> Daemon::Impl::missing_parts() {
    std::vector<std::string> missing;
    const auto& api = m_config.api;
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
        missing.push_back("an allowed client subject ([[api.clients]])");
    }
    check_hsm(missing);
    return missing;
}

void Daemon::Impl::try_start() {
    auto missing = missing_parts();
    if (missing.empty()) {
        start_serving();
        return;
    }
    const std::set<std::string> now_missing(missing.begin(), missing.end());
    if (now_missing != m_reported_missing) {
        std::string list;
        for (const auto& part : missing) {
            list += (list.empty() ? "" : "; ") + part;
        }
        spdlog::warn("event=unprovisioned missing=\"{}\"", list);
        m_reported_missing = now_missing;
    }
    m_poll.expires_after(kProvisioningPoll);
    m_poll.async_wait([this](const boost::system::error_code& error) {
        if (!error) {
            try_start();
        }
    });
}

void Daemon::Impl::start_serving() {
    auto serving = std::make_unique<Serving>();
    serving->hsm = m_hsm;
    serving->secrets = std::make_unique<Secrets>(m_hsm);
    serving->audit = std::make_unique<AuditLog>(*m_database, *serving->secrets);
    serving->queue =
        std::make_unique<gsm::SmsQueue>(m_database->path(), serving->secrets->sms_sealer(),
                                        [clock = m_clock] { return clock->now(); });
    serving->modems = std::make_unique<gsm::ModemPool>(m_config.modems, *serving->queue);
    serving->context = std::make_unique<Context>(Context{
        *m_database, *serving->secrets, *m_clock, m_config, *serving->queue, *serving->audit});
    serving->phones = std::make_unique<PhoneService>(*serving->context);
    serving->cards = std::make_unique<PincardService>(*serving->context);
    serving->challenges = std::make_unique<ChallengeService>(*serving->context, *serving->cards);
    serving->idempotency = std::make_unique<Idempotency>(*serving->context);
    serving->router = std::make_unique<Router>(RouterParts{
        *serving->context, *serving->phones, *serving->cards, *serving->challenges,
        *serving->idempotency, [this] { return health(); }, [this] { return metrics(); },
        [this](const std::string& user, const std::string& actor) { erase_user(user, actor); }});

    api::TlsConfig tls;
    tls.ca_file = m_config.api.ca_file;
    tls.certificate_file = m_config.api.certificate_file;
    tls.key_file = m_config.api.key_file;
    tls.clients = m_config.api.clients;
    if (!m_config.api.crl_file.empty()) {
        tls.crl_file = m_config.api.crl_file;
    }
    serving->server = std::make_unique<api::Server>(
        m_io, m_config.api.listen, m_config.api.port, tls, m_config.api.limits,
        [this](const api::Request& request) { return handle(request); });

    serving->modems->start();
    serving->server->start();
    m_serving = std::move(serving);
    spdlog::info("event=serving listen={} port={} modems={}", m_config.api.listen,
                 m_serving->server->port(), m_config.modems.size());
    schedule_anchor();
}

void Daemon::Impl::stop_serving() {
    if (!m_serving) {
        return;
    }
    m_serving->server->stop();
    m_serving->modems->stop();
    write_anchor_now();
}

void Daemon::Impl::write_anchor_now() {
    if (!m_serving) {
        return;
    }
    try {
        const auto anchor = m_serving->audit->latest();
        if (m_config.audit_anchor_file.empty()) {
            spdlog::info("event=audit_anchor seq={} mac={}", anchor.sequence, anchor.mac_hex);
        } else {
            write_anchor(m_config.audit_anchor_file, anchor);
        }
    } catch (const std::exception& error) {
        spdlog::error("event=audit_anchor_failed error=\"{}\"", error.what());
    }
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
    const auto hsm_health = m_hsm ? m_hsm->health() : hsm::HsmHealth{false, "absent", ""};
    const bool database_ok = m_database && m_database->healthy();
    body["hsm"] = json::object{{"ok", hsm_health.ok}, {"state", hsm_health.state}};
    body["database"] = json::object{{"ok", database_ok}};
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
                                          {"failed", modem.failed}});
        }
        const auto stats = m_serving->queue->stats();
        json::object queue{{"depth", stats.depth}};
        queue["oldest_age_seconds"] =
            stats.oldest_age ? json::value(stats.oldest_age->count()) : json::value(nullptr);
        body["queue"] = std::move(queue);
    }
    degraded = degraded || m_config.modems.empty();
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
    const bool hsm_ok = m_hsm && m_hsm->health().ok;
    append_metric(out, "otpbox_hsm_up", "1 when the HSM answers", "gauge", "", hsm_ok ? 1 : 0);
    if (m_serving) {
        const auto stats = m_serving->queue->stats();
        append_metric(out, "otpbox_sms_queue_depth", "SMS queued or being sent", "gauge", "",
                      static_cast<double>(stats.depth));
        append_metric(out, "otpbox_sms_queue_oldest_seconds", "age of the oldest queued SMS",
                      "gauge", "",
                      stats.oldest_age ? static_cast<double>(stats.oldest_age->count()) : 0);
        bool first = true;
        for (const auto& modem : m_serving->modems->health()) {
            const auto labels = "modem=\"" + modem.name + "\"";
            append_metric(out, "otpbox_modem_ready", first ? "1 when the modem can send" : "",
                          "gauge", labels, modem.state == "ready" ? 1 : 0);
            append_metric(out, "otpbox_modem_signal_rssi", first ? "AT+CSQ rssi (99 unknown)" : "",
                          "gauge", labels, modem.signal_rssi);
            append_metric(out, "otpbox_modem_sms_sent_total", first ? "SMS sent by the modem" : "",
                          "counter", labels, static_cast<double>(modem.sent));
            append_metric(out, "otpbox_modem_sms_failed_total",
                          first ? "SMS the modem failed to send" : "", "counter", labels,
                          static_cast<double>(modem.failed));
            first = false;
        }
    }
    return out;
}

api::Response Daemon::Impl::handle(const api::Request& request) {
    const auto started = std::chrono::steady_clock::now();
    api::Response response;
    try {
        response = m_serving->router->handle(request);
    } catch (const std::exception& error) {
        spdlog::error("event=request_failed route={} error=\"{}\"", route_of(request.target),
                      error.what());
        response = error_response(500, "internal", "internal error");
    }
    m_metrics.count_response(response.status);
    const auto took = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - started);
    const auto level = response.status >= 500 ? spdlog::level::warn : spdlog::level::info;
    spdlog::log(level, "event=request method={} route={} status={} client=\"{}\" us={}",
                request.method_name, route_of(request.target), response.status,
                request.client_subject, took.count());
    return response;
}

void Daemon::Impl::erase_user(const std::string& user, const std::string& actor) {
    const auto now = m_clock->now();
    const auto pseudonym = m_serving->secrets->pseudonym(user);
    m_database->transaction([&] {
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
        m_database = std::make_unique<Database>(m_config.database);
    } catch (const DatabaseError& error) {
        throw FatalError(error.what());
    }
    m_signals.async_wait([this](const boost::system::error_code&, int signal) {
        spdlog::info("event=stopping signal={}", signal);
        m_poll.cancel();
        m_anchor_timer.cancel();
        stop_serving();
    });
    try_start();

    std::vector<std::thread> threads;
    for (unsigned i = 1; i < m_config.api.threads; ++i) {
        threads.emplace_back([this] { m_io.run(); });
    }
    m_io.run();
    for (auto& thread : threads) {
        thread.join();
    }
    m_serving.reset();
    spdlog::info("event=stopped");
}

Daemon::Daemon(Config config, std::shared_ptr<const Clock> clock)
    : m_impl(std::make_unique<Impl>(std::move(config), std::move(clock))) {}

Daemon::~Daemon() = default;

void Daemon::run() {
    m_impl->run();
}

}  // namespace otpbox::firmware
