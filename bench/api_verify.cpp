// PINCard verifications per second through otpboxd's API on kept-alive mTLS
// connections, against the rate at which the same kind of SQLite database
// (WAL, opened by firmware::Database as the daemon opens its own, in the same
// folder, past its first WAL checkpoint as the daemon's is) commits one small
// UPDATE at a time, each waiting for a sync of its own, measured in one run
// (bench/support/rounds.hpp). Prints the verification rate as a ratio of the
// commit rate, the verify request's p50 and p99, its p99 at a fixed offered
// rate, the daemon's CPU time per verification, how many of its commits
// shared one sync (group commit), and the targets met or not:
//
// - at least 5,000 verifications a second;
// - at least twice the one-commit-at-a-time rate;
// - verify p99 under 10 ms at 1,000 verifications a second offered.
//
// A provisioned instance (as tls_load's, server key in the SoftHSM token)
// first issues a PINCard to each of up to 10,000 users over a few connections
// (POST /v1/users/{u}/pincards; the answer shows the grid once, and the
// benchmark keeps it in memory only). When issuing all of them takes longer
// than kIssueBudget, the run goes on with the cards issued so far and says so.
//
// A verification is a login (POST /v1/users/{u}/login, 201 with three cells)
// and the right answer to its challenge (POST /v1/challenges/{id}/verify, 200
// accepted); only the verify request's time counts as its latency. kClients
// clients, each a thread with one connection and a share of the users of its
// own, verify in a closed loop. The first verification of a card also
// activates it, within the same commit. The paced run then offers 1,000
// verifications a second (or, when the closed loop did not reach that, 80 %
// of its rate), spread over the same clients, for kPacedTime.
//
// Nothing is pinned: the daemon uses both CPUs, and the clients share them.
//
// In the same rounds, a bound the daemon cannot pass on this machine: the
// rate at which SoftHSM2 alone computes HMAC-SHA256 with a token key, on a
// token of the benchmark's own, called directly on both CPUs. A verification
// needs kHmacsPerVerification of them, so that rate divided by it is the
// most verifications a second any code could reach with this token, even if
// TLS, HTTP, SQLite and the load clients took no time at all.

#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "bench_main.hpp"
#include "bench_token.hpp"
#include "instance.hpp"
#include "otpbox/firmware/database.hpp"
#include "otpbox/hsm/hsm.hpp"
#include "raw_token.hpp"
#include "rounds.hpp"
#include "tls_client.hpp"

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace otpbox::bench;
using namespace std::chrono_literals;

constexpr std::size_t kUsers = 10'000;
constexpr auto kIssueBudget = 90s;
constexpr unsigned kIssueClients = 4;
constexpr unsigned kClients = 8;
constexpr double kPacedRate = 1000;
constexpr auto kPacedTime = 5s;
constexpr double kSustainableShare = 0.8;  // of the closed loop's rate, when pacing below 1,000/s
constexpr auto kLate = 1ms;                // a paced verification started later counts as late
constexpr int kWarmUpCommits = 1500;       // of the reference, see reference_database

// A login's three card cells, and the MACs of the two audit rows a login and
// an accepted answer write (firmware/src/challenge_service.cpp).
constexpr double kHmacsPerVerification = 5;
constexpr unsigned kHmacThreads = 2;  // the machine's CPUs
constexpr const char* kHmacKey = "bench-bound-mac";

constexpr double kTargetRate = 5000;
constexpr double kTargetCommitRatio = 2.0;
constexpr double kTargetP99Ms = 10;

// A user's card as its issuance answer showed it: the values of every cell,
// row after row. Held in memory only, never printed.
struct Card {
    std::string user;
    std::size_t columns = 0;
    std::size_t cell_length = 0;
    std::string values;

    // The response to a challenge: the values of the named cells in their
    // order ("C5" is column C, row 5).
    [[nodiscard]] std::string answer(const json::array& cells) const {
        std::string response;
        for (const auto& cell : cells) {
            const std::string_view name = cell.as_string();
            const auto column = static_cast<std::size_t>(name[0] - 'A');
            const auto row = std::stoul(std::string(name.substr(1))) - 1;
            response += values.substr((row * columns + column) * cell_length, cell_length);
        }
        return response;
    }
};

Card card_from_answer(std::string user, const json::object& answer) {
    Card card{std::move(user), json::value_to<std::size_t>(answer.at("columns")), 0, {}};
    for (const auto& row : answer.at("grid").as_array()) {
        for (const auto& cell : row.as_array()) {
            const std::string_view value = cell.as_string();
            card.cell_length = value.size();
            card.values += value;
        }
    }
    return card;
}

std::string user_name(std::size_t index) {
    char name[32];
    std::snprintf(name, sizeof(name), "bench-user-%05zu", index);
    return name;
}

// An unexpected answer, described by its status and error code only: other
// bodies may hold a grid.
std::runtime_error unexpected(std::string_view call, const HttpAnswer& answer) {
    std::string what = std::string(call) + " answered " + std::to_string(answer.status);
    json::error_code error;
    const auto body = json::parse(answer.body, error);
    if (!error && body.is_object()) {
        if (const auto* code = body.as_object().if_contains("error"); code && code->is_string()) {
            what += " " + std::string(code->as_string());
        }
    }
    return std::runtime_error(what);
}

json::object object_of(const HttpAnswer& answer) {
    return json::parse(answer.body).as_object();
}

// Issues a card to each of kUsers users over kIssueClients connections,
// stopping early at kIssueBudget; returns the cards issued.
std::vector<Card> issue_cards(SSL_CTX* ctx, std::uint16_t port) {
    const auto deadline = Clock::now() + kIssueBudget;
    std::atomic<std::size_t> next{0};
    std::vector<std::vector<Card>> issued(kIssueClients);
    Failures failures;
    std::vector<std::thread> threads;
    for (unsigned client = 0; client < kIssueClients; ++client) {
        threads.emplace_back([&, client] {
            try {
                TlsConnection connection(ctx, port);
                for (auto i = next++; i < kUsers && Clock::now() < deadline; i = next++) {
                    const auto user = user_name(i);
                    const auto answer =
                        http_request(connection, "POST", "/v1/users/" + user + "/pincards");
                    if (answer.status != 201) {
                        throw unexpected("card issuance", answer);
                    }
                    issued[client].push_back(card_from_answer(user, object_of(answer)));
                }
            } catch (const std::exception& error) {
                failures.record(error);
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    failures.throw_if_any();

    std::vector<Card> cards;
    for (auto& some : issued) {
        std::move(some.begin(), some.end(), std::back_inserter(cards));
    }
    return cards;
}

// One load client: a kept-alive connection, the cards it logs in with (no
// other client has them, so no two logins of one user overlap), and the
// times its verify requests took.
class Client {
  public:
    Client(SSL_CTX* ctx, std::uint16_t port, std::vector<const Card*> cards)
        : m_connection(ctx, port), m_cards(std::move(cards)) {}

    // A login for the next user and the right answer to its challenge;
    // throws on any other answer.
    void verify_once() {
        const Card& card = *m_cards[m_next];
        m_next = (m_next + 1) % m_cards.size();

        const auto login = http_request(m_connection, "POST", "/v1/users/" + card.user + "/login");
        if (login.status != 201) {
            throw unexpected("login", login);
        }
        const auto challenge = object_of(login);
        if (challenge.at("method").as_string() != "pincard") {
            throw std::runtime_error("login asked for an SMS, not the PINCard");
        }
        const auto target =
            "/v1/challenges/" + std::string(challenge.at("challenge").as_string()) + "/verify";
        const auto body =
            R"({"response": ")" + card.answer(challenge.at("cells").as_array()) + R"("})";

        const auto start = Clock::now();
        const auto verified = http_request(m_connection, "POST", target, body);
        m_latencies.push_back(Seconds(Clock::now() - start).count());
        if (verified.status != 200 || object_of(verified).at("result").as_string() != "accepted") {
            throw unexpected("verify", verified);
        }
    }

    // The verify requests' times in seconds since the last call.
    std::vector<double> take_latencies() { return std::exchange(m_latencies, {}); }

  private:
    TlsConnection m_connection;
    std::vector<const Card*> m_cards;
    std::size_t m_next = 0;
    std::vector<double> m_latencies;
};

using Clients = std::vector<std::unique_ptr<Client>>;

// Client i gets every kClients-th card from the i-th on.
Clients make_clients(SSL_CTX* ctx, std::uint16_t port, const std::vector<Card>& cards) {
    Clients clients;
    for (unsigned i = 0; i < kClients; ++i) {
        std::vector<const Card*> own;
        for (std::size_t card = i; card < cards.size(); card += kClients) {
            own.push_back(&cards[card]);
        }
        clients.push_back(std::make_unique<Client>(ctx, port, std::move(own)));
    }
    return clients;
}

std::vector<double> take_latencies(Clients& clients) {
    std::vector<double> all;
    for (auto& client : clients) {
        const auto some = client->take_latencies();
        all.insert(all.end(), some.begin(), some.end());
    }
    return all;
}

// The value below which a share p of values lies, in milliseconds.
double percentile_ms(std::vector<double> values, double p) {
    if (values.empty()) {
        return 0;
    }
    std::sort(values.begin(), values.end());
    const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(values.size())));
    return values[std::clamp<std::size_t>(rank, 1, values.size()) - 1] * 1000;
}

// Verifications in a closed loop, each thread on the client of its number.
struct VerifyWork {
    Clients& clients;
    Failures& failures;

    Client* prepare(unsigned thread) { return clients[thread].get(); }
    void run(Client*& client) {
        try {
            client->verify_once();
        } catch (const std::exception& error) {
            failures.record(error);
        }
    }
};

// The reference: one UPDATE of one row per transaction, on one thread.
struct CommitWork {
    otpbox::firmware::Database& database;

    int prepare(unsigned) { return 0; }
    void run(int&) {
        database.transaction([&] {
            database.prepare("UPDATE bench_counter SET value = value + 1 WHERE id = 1").run();
        });
    }
};

// The token's bound: one HMAC-SHA256 of 64 bytes with a token key, as the
// daemon's card cells and audit MACs are (C_SignInit and C_Sign on a
// session of the thread's own, the key looked up once).
struct TokenHmacWork {
    const RawToken& token;
    std::vector<CK_BYTE> data = std::vector<CK_BYTE>(64, 0x5a);

    struct State {
        RawSession session;
        CK_OBJECT_HANDLE key;
    };

    State prepare(unsigned) const {
        auto session = token.open_session();
        const auto key = session.find_key(kHmacKey);
        return State{std::move(session), key};
    }

    void run(State& state) {
        CK_MECHANISM mechanism{CKM_SHA256_HMAC, nullptr, 0};
        CK_BYTE mac[32];
        CK_ULONG length = sizeof(mac);
        auto& fn = token.fn();
        check(fn.C_SignInit(state.session.handle(), &mechanism, state.key), "C_SignInit");
        check(fn.C_Sign(state.session.handle(), data.data(), data.size(), mac, &length), "C_Sign");
    }
};

struct PacedRun {
    double offered = 0;
    double achieved = 0;
    long started = 0;
    long late = 0;
    std::vector<double> latencies;
};

// Offers `rate` verifications a second for kPacedTime: verification i is due
// at start + i / rate and goes to whichever client is free first.
PacedRun run_paced(Clients& clients, double rate) {
    const auto total = static_cast<long>(rate * Seconds(kPacedTime).count());
    const auto start = Clock::now() + 100ms;
    std::atomic<long> next{0};
    std::atomic<long> late{0};
    std::vector<Clock::time_point> finished(clients.size(), start);
    Failures failures;
    std::vector<std::thread> threads;
    for (std::size_t c = 0; c < clients.size(); ++c) {
        threads.emplace_back([&, c] {
            for (auto i = next++; i < total; i = next++) {
                const auto due = start + std::chrono::duration_cast<Clock::duration>(
                                             Seconds(static_cast<double>(i) / rate));
                std::this_thread::sleep_until(due);
                if (Clock::now() - due > kLate) {
                    ++late;
                }
                try {
                    clients[c]->verify_once();
                } catch (const std::exception& error) {
                    failures.record(error);
                    break;
                }
            }
            finished[c] = Clock::now();
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    failures.throw_if_any();
    const Seconds took = *std::max_element(finished.begin(), finished.end()) - start;
    return {rate, static_cast<double>(total) / took.count(), total, late.load(),
            take_latencies(clients)};
}

// The reference database beside the daemon's, made as the daemon makes its
// own, with one row to update, and warmed up: SQLite checkpoints the WAL at
// 1,000 pages and then writes it again from its start, while before that
// every commit (one page here) makes the file longer, which costs the file
// system more to sync. The daemon's database is long past that point when
// it is measured.
std::unique_ptr<otpbox::firmware::Database> reference_database(const fs::path& dir) {
    auto database = std::make_unique<otpbox::firmware::Database>(dir / "reference.db");
    database->execute(
        "CREATE TABLE bench_counter (id INTEGER PRIMARY KEY, value INTEGER NOT NULL);"
        "INSERT INTO bench_counter (id, value) VALUES (1, 0)");
    CommitWork warm_up{*database};
    int unused = 0;
    for (int commit = 0; commit < kWarmUpCommits; ++commit) {
        warm_up.run(unused);
    }
    return database;
}

// The daemon's commits and the syncs that made them durable, from its
// metrics (otpbox_db_commits_total, otpbox_db_syncs_total).
struct DaemonCommits {
    double commits = 0;
    double syncs = 0;
};

DaemonCommits daemon_commits(SSL_CTX* monitor, std::uint16_t port) {
    TlsConnection connection(monitor, port);
    const auto answer = http_request(connection, "GET", "/metrics");
    const auto value = [&](const std::string& name) {
        const auto at = answer.body.find("\n" + name + " ");
        if (answer.status != 200 || at == std::string::npos) {
            throw std::runtime_error("the daemon's metrics lack " + name);
        }
        return std::stod(answer.body.substr(at + name.size() + 2));
    };
    return {value("otpbox_db_commits_total"), value("otpbox_db_syncs_total")};
}

// The closed loop against the reference, in interleaved rounds.
struct ClosedLoop {
    double rate = 0;
    double commit_rate = 0;
    double ratio = 0;
    double token_hmac_rate = 0;
    std::vector<double> latencies;
    double cpu_ms = 0;            // the daemon's, per verification
    double commits_per_sync = 0;  // the daemon's
};

ClosedLoop run_closed_loop(Clients& clients, const Daemon& daemon, const fs::path& dir,
                           SSL_CTX* monitor, std::uint16_t port) {
    const auto database = reference_database(dir);
    // Only the hsm layer initialises the module in a process; the direct
    // calls borrow its login (bench/support/raw_token.hpp).
    const BenchToken token;
    const auto hsm = otpbox::hsm::Hsm::open(token.hsm_config());
    hsm->generate_secret_key(kHmacKey, otpbox::hsm::KeyKind::hmac_sha256);
    const RawToken raw_token(kSoftHsmModule, kTokenLabel);

    Failures failures;
    VerifyWork verify{clients, failures};
    CommitWork commit{*database};
    TokenHmacWork hmac{raw_token};
    const auto commits_before = daemon_commits(monitor, port);
    const double cpu_before = daemon.cpu_seconds();
    const auto measured =
        measure_each(OnThreads<VerifyWork>{kClients, verify}, OnThreads<CommitWork>{1, commit},
                     OnThreads<TokenHmacWork>{kHmacThreads, hmac});
    failures.throw_if_any();

    ClosedLoop loop{measured.rate(0), measured.rate(1), measured.ratio(0, 1), measured.rate(2),
                    take_latencies(clients)};
    loop.cpu_ms = (daemon.cpu_seconds() - cpu_before) * 1e3 /
                  static_cast<double>(std::max<std::size_t>(loop.latencies.size(), 1));
    const auto commits_after = daemon_commits(monitor, port);
    loop.commits_per_sync = (commits_after.commits - commits_before.commits) /
                            std::max(commits_after.syncs - commits_before.syncs, 1.0);
    return loop;
}

// 1,000 a second, or 80 % of what the closed loop reached when that is less.
double paced_rate(const ClosedLoop& loop) {
    return loop.rate >= kPacedRate ? kPacedRate
                                   : std::floor(kSustainableShare * loop.rate / 10) * 10;
}

std::vector<Card> issue_and_report(SSL_CTX* ctx, std::uint16_t port) {
    const auto start = Clock::now();
    auto cards = issue_cards(ctx, port);
    const Seconds took = Clock::now() - start;
    std::printf("PINCards issued: %zu of %zu in %.1f s (%.0f/s)%s\n", cards.size(), kUsers,
                took.count(), static_cast<double>(cards.size()) / took.count(),
                cards.size() < kUsers ? "; fewer users than meant: issuing took too long" : "");
    if (cards.size() < kClients) {
        throw std::runtime_error("too few cards to give every client one");
    }
    return cards;
}

void print_closed_loop(const ClosedLoop& loop, std::size_t users) {
    std::printf("%u clients, one kept-alive TLS 1.3 connection each; %zu users with a card\n",
                kClients, users);
    std::printf("one durable commit at a time (SQLite WAL, a sync each): %6.0f/s\n",
                loop.commit_rate);
    std::printf("verifications (login + accepted answer):            %9.0f/s  ratio %.2f\n",
                loop.rate, loop.ratio);
    std::printf("verify request: p50 %.1f ms, p99 %.1f ms (%zu requests)\n",
                percentile_ms(loop.latencies, 0.5), percentile_ms(loop.latencies, 0.99),
                loop.latencies.size());
    std::printf("otpboxd CPU time per verification: %.2f ms (user and system)\n", loop.cpu_ms);
    std::printf("otpboxd commits per sync (group commit): %.1f\n", loop.commits_per_sync);
    std::printf(
        "bound from the token alone: SoftHSM2 HMAC-SHA256 with a token key, called directly on "
        "%u threads: %.0f/s; at %.0f a verification, at most %.0f verifications/s\n",
        kHmacThreads, loop.token_hmac_rate, kHmacsPerVerification,
        loop.token_hmac_rate / kHmacsPerVerification);
}

void print_paced(const PacedRun& paced) {
    std::printf(
        "paced at %.0f/s offered for %.0f s: %.0f/s done, %ld of %ld started over %lld ms late; "
        "verify p50 %.1f ms, p99 %.1f ms\n",
        paced.offered, Seconds(kPacedTime).count(), paced.achieved, paced.late, paced.started,
        static_cast<long long>(kLate.count()), percentile_ms(paced.latencies, 0.5),
        percentile_ms(paced.latencies, 0.99));
}

const char* verdict(bool met) {
    return met ? "met" : "not met";
}

// How much of the token's bound a target asks for: above 1.0 no code can
// meet it with this token on this machine.
void print_share_of_bound(double wanted, const ClosedLoop& loop) {
    const double bound = loop.token_hmac_rate / kHmacsPerVerification;
    std::printf("    needs %.0f/s, %.2f of the token's bound\n", wanted, wanted / bound);
}

void print_targets(const ClosedLoop& loop, const PacedRun& paced) {
    const bool at_full_rate = paced.offered >= kPacedRate;
    const bool sustained = paced.achieved >= 0.95 * paced.offered;
    const double p99 = percentile_ms(paced.latencies, 0.99);
    std::printf("targets:\n");
    std::printf("  verifications/s >= %.0f: %.0f, %s\n", kTargetRate, loop.rate,
                verdict(loop.rate >= kTargetRate));
    print_share_of_bound(kTargetRate, loop);
    std::printf("  verifications/s >= %.1f x one-commit rate: %.2f, %s\n", kTargetCommitRatio,
                loop.ratio, verdict(loop.ratio >= kTargetCommitRatio));
    print_share_of_bound(kTargetCommitRatio * loop.commit_rate, loop);
    std::printf("  verify p99 < %.0f ms at %.0f/s: p99 %.1f ms at %.0f/s offered%s, %s\n",
                kTargetP99Ms, kPacedRate, p99, paced.offered,
                at_full_rate ? "" : " (80 % of the closed loop, which did not reach 1000/s)",
                verdict(at_full_rate && sustained && p99 < kTargetP99Ms));
}

int bench() {
    const TempDir temp("verify");
    const auto dir = temp.path() / "instance";
    const std::uint16_t port = provision(dir);
    const Daemon daemon(dir);
    const auto ctx = client_context(dir / "pki");
    const auto monitor = client_context(dir / "pki", "monitor");
    wait_for_certificate(
        ctx.get(), port, "otpboxd", dir / "pki" / "server.crt",
        [](TlsConnection& connection) { (void)http_request(connection, "GET", "/bench"); });

    const auto cards = issue_and_report(ctx.get(), port);
    auto clients = make_clients(ctx.get(), port, cards);
    const auto loop = run_closed_loop(clients, daemon, dir, monitor.get(), port);
    print_closed_loop(loop, cards.size());
    const auto paced = run_paced(clients, paced_rate(loop));
    print_paced(paced);
    print_targets(loop, paced);
    return 0;
}

}  // namespace

int main() {
    return otpbox::bench::run_main("api_verify", bench);
}
