#include "console/console.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>

#include "console/password.hpp"
#include "otpbox/firmware/log_text.hpp"
#include "otpbox/firmware/version.hpp"
#include "otpbox/hsm/error.hpp"

namespace otpbox::provisioning::console {

namespace {

constexpr auto kMaxLoginDelay = std::chrono::seconds(30);
constexpr std::size_t kMaxWords = 16;
constexpr std::string_view kCancelled = "Cancelled; nothing changed.\n";

// 1, 2, 4, 8, 16, 30, 30 ... seconds after the 1st, 2nd, 3rd ... wrong password.
std::chrono::seconds login_delay(unsigned failures) {
    const auto doubled = std::chrono::seconds(1LL << std::min(failures - 1, 5U));
    return std::min(doubled, kMaxLoginDelay);
}

}  // namespace

std::vector<std::string> split_words(std::string_view line) {
    std::vector<std::string> words;
    std::string word;
    bool quoted = false;
    bool in_word = false;
    for (const char c : line) {
        if (c == '"') {
            quoted = !quoted;
            in_word = true;
        } else if ((c == ' ' || c == '\t') && !quoted) {
            if (in_word) {
                words.push_back(std::move(word));
                word.clear();
                in_word = false;
            }
        } else {
            word.push_back(c);
            in_word = true;
        }
    }
    if (in_word) {
        words.push_back(std::move(word));
    }
    return words;
}

std::string join_words(std::span<const std::string> words) {
    std::string text;
    for (std::size_t i = 0; i < words.size(); ++i) {
        text += (i == 0 ? "" : " ") + words[i];
    }
    return text;
}

Console::Console(Appliance& appliance, Terminal& terminal, const std::atomic<bool>& stop)
    : m_appliance(appliance), m_terminal(terminal), m_stop(stop) {}

void Console::run() {
    while (!m_stop.load()) {
        m_flow = Flow::go_on;
        try {
            m_appliance.reload();
        } catch (const std::exception& error) {
            say(std::string("The configuration cannot be read: ") + error.what() +
                "\nFix it and press Enter.\n");
            (void)m_terminal.read_line("", false, std::nullopt);
            continue;
        }
        say(std::string("\notpbox technician console, version ") + std::string(firmware::kVersion) +
            "\n");
        try {
            if (!password_set(m_appliance.settings().password_file)) {
                first_boot();
                continue;
            }
            if (log_in()) {
                session();
            }
        } catch (const LineError&) {
            throw;
        } catch (const std::exception& error) {
            // A step of the first boot failed (a PIN the token refused, a
            // file that cannot be written): say so and start over.
            m_appliance.forget_hsm();
            say(std::string("Failed: ") + error.what() + "\n");
        }
    }
}

void Console::first_boot() {
    say("This appliance is factory-fresh: set the console password first\n"
        "(at least 10 characters; it is asked for at every login).\n");
    // The Enter the technician presses to wake the console lands here: it
    // shows the greeting again rather than a cancellation.
    auto password = ask_new_secret("console password", kMinPasswordLength, false,
                                   std::numeric_limits<std::size_t>::max(), "");
    if (password.empty()) {
        return;
    }
    set_password(m_appliance.settings().password_file, password);
    std::fill(password.begin(), password.end(), '\0');
    // Wrong passwords typed for a password no longer set count no more.
    m_failed_logins = 0;
    keep_failed_logins();
    say("Console password set.\n");
    m_appliance.record("password.set", "", "ok");
    spdlog::info("event=console_password_set");
    if (!m_appliance.token_initialised() &&
        confirm("The HSM token is not initialised. Initialise it now?")) {
        initialise_token();
    }
    say("Log in to go on; 'help' lists the commands.\n");
}

bool Console::log_in() {
    wait_out_earlier_failures();
    auto password = m_terminal.read_line("Password: ", true, std::nullopt);
    if (password.kind == InputKind::end_of_input || password.kind == InputKind::cancelled ||
        password.kind == InputKind::stopped ||
        (password.kind == InputKind::line && password.text.empty())) {
        return false;
    }
    if (password.kind == InputKind::line &&
        check_password(m_appliance.settings().password_file, password.text)) {
        m_failed_logins = 0;
        keep_failed_logins();
        m_appliance.record("login", "", "ok");
        say("Logged in. 'help' lists the commands; Ctrl-D or 'logout' ends the session.\n");
        return true;
    }
    ++m_failed_logins;
    // Kept before the wait, so that a restart during it does not end it.
    keep_failed_logins();
    const auto delay = login_delay(m_failed_logins);
    m_appliance.record("login", "", "rejected");
    spdlog::warn("event=console_login_rejected failures={}", m_failed_logins);
    say("Wrong password. Next try in " + std::to_string(delay.count()) + " s.\n");
    // What is typed meanwhile is dropped, so type-ahead never counts as tries.
    m_terminal.discard_input(delay);
    return false;
}

void Console::wait_out_earlier_failures() {
    if (m_failed_logins_read) {
        return;
    }
    m_failed_logins_read = true;
    const auto earlier = read_failed_logins(m_appliance.settings().password_file);
    m_failed_logins = earlier.count;
    if (earlier.count == 0) {
        return;
    }
    using std::chrono::milliseconds;
    const auto delay = std::chrono::duration_cast<milliseconds>(login_delay(earlier.count));
    const auto since =
        std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now() - earlier.last);
    // A clock set back since then makes the wait no longer than the delay.
    const auto left = std::clamp(delay - since, milliseconds(0), delay);
    if (left == milliseconds(0)) {
        return;
    }
    spdlog::info("event=console_login_delay_kept failures={}", earlier.count);
    say("Wrong passwords were typed before the console restarted. Next try in " +
        std::to_string(std::chrono::ceil<std::chrono::seconds>(left).count()) + " s.\n");
    m_terminal.discard_input(left);
}

void Console::keep_failed_logins() {
    const auto& password_file = m_appliance.settings().password_file;
    try {
        if (m_failed_logins == 0) {
            forget_failed_logins(password_file);
        } else {
            write_failed_logins(password_file, {m_failed_logins, std::chrono::system_clock::now()});
        }
    } catch (const std::exception& error) {
        // Known shortcoming: the count then lives only in memory, and a
        // restart of the console starts it afresh.
        spdlog::warn("event=console_failures_not_kept error=\"{}\"",
                     firmware::quotable(error.what()));
    }
}

void Console::session() {
    while (m_flow == Flow::go_on) {
        auto input = m_terminal.read_line("otpbox> ", false, m_appliance.settings().idle);
        m_flow = flow_after(input);
        if (m_flow != Flow::go_on || input.kind != InputKind::line) {
            continue;
        }
        try {
            if (configuration_read(input.text)) {
                execute(input.text);
            }
        } catch (const LineError&) {
            throw;
        } catch (const hsm::HsmError& error) {
            m_appliance.forget_hsm();
            say(std::string("The HSM cannot be used: ") + error.what() + "\n");
        } catch (const std::exception& error) {
            say(std::string("Failed: ") + error.what() + "\n");
        }
    }
    if (m_flow == Flow::logged_out) {
        m_appliance.record("logout", "", "ok");
        say("Logged out.\n");
    }
}

bool Console::configuration_read(const std::string& line) {
    try {
        m_appliance.reload();
        m_config_problem.clear();
        return true;
    } catch (const std::exception& error) {
        m_config_problem = error.what();
    }
    const auto words = split_words(line);
    const std::string first = words.empty() ? "" : words.front();
    const bool works = first == "help" || first == "status" || first == "logout";
    say("The configuration is broken: " + m_config_problem +
        "\nUntil it is fixed, only help, status and logout work" +
        (works ? ".\n" : "; nothing was done.\n"));
    if (!works) {
        m_appliance.record("config", "", "broken");
    }
    return works;
}

Console::Flow Console::flow_after(const Input& input) {
    switch (input.kind) {
        case InputKind::line:
        case InputKind::cancelled:
            return Flow::go_on;
        case InputKind::too_long:
            say("That line is longer than " + std::to_string(Terminal::kMaxLine) +
                " characters; it was ignored.\n");
            return Flow::go_on;
        case InputKind::idle:
            say("Idle for too long.\n");
            return Flow::logged_out;
        case InputKind::end_of_input:
            return Flow::logged_out;
        case InputKind::stopped:
            return Flow::stopped;
    }
    return Flow::go_on;
}

void Console::execute(const std::string& line) {
    const auto words = split_words(line);
    if (words.empty()) {
        return;
    }
    if (words.size() > kMaxWords) {
        say("Too many words; 'help' shows how each command is used.\n");
        m_appliance.record("unknown", "", "refused");
        return;
    }
    const Command* found = nullptr;
    std::size_t used = 0;
    for (const auto& command : commands()) {
        const auto name = split_words(command.name);
        if (name.size() <= words.size() && name.size() > used &&
            std::equal(name.begin(), name.end(), words.begin())) {
            found = &command;
            used = name.size();
        }
    }
    if (found == nullptr) {
        // "hsm" alone, or "hsm frob": the commands of that group say more
        // than "unknown".
        const auto group = words.front() + " ";
        bool listed = false;
        for (const auto& command : commands()) {
            if (command.name.rfind(group, 0) == 0) {
                if (!listed) {
                    say("'" + words.front() + "' goes with one of these:\n");
                    listed = true;
                }
                say_usage(command);
            }
        }
        if (!listed) {
            say("Unknown command '" + words.front().substr(0, 40) + "'; 'help' lists them.\n");
        }
        // What was typed is not kept: it may be a password typed at the wrong prompt.
        m_appliance.record("unknown", "", "refused");
        return;
    }
    // Every command leaves an audit row: one that records none of its own
    // (a usage message, a refusal before any change) gets one here.
    std::string action(found->name);
    std::replace(action.begin(), action.end(), ' ', '.');
    const auto recorded = m_appliance.records();
    try {
        (this->*(found->run))(std::span<const std::string>(words).subspan(used));
    } catch (...) {
        m_appliance.record(action, "", "failed");
        throw;
    }
    if (m_appliance.records() == recorded) {
        m_appliance.record(action, "", "nothing changed");
    }
}

std::optional<std::string> Console::ask_hidden(std::string_view prompt) {
    auto input = m_terminal.read_line(prompt, true, m_appliance.settings().idle);
    if (input.kind == InputKind::too_long) {
        (void)flow_after(input);
        return std::string();
    }
    if (input.kind != InputKind::line) {
        m_flow = flow_after(input);
        return std::nullopt;
    }
    return std::move(input.text);
}

std::string Console::ask_new_secret(std::string_view what, std::size_t min_length, bool digits_only,
                                    std::size_t max_length, std::string_view on_empty) {
    constexpr int kTries = 3;
    for (int i = 0; i < kTries && m_flow == Flow::go_on; ++i) {
        bool cancelled = false;
        auto secret =
            ask_new_secret_once(what, min_length, max_length, digits_only, on_empty, cancelled);
        if (!secret.empty() || cancelled) {
            return secret;
        }
    }
    // A secret typed ahead for a fourth try must not land, echoed, at the
    // command prompt.
    m_terminal.discard_input(std::chrono::milliseconds(0));
    say("Nothing changed.\n");
    return {};
}

std::string Console::ask_new_secret_once(std::string_view what, std::size_t min_length,
                                         std::size_t max_length, bool digits_only,
                                         std::string_view on_empty, bool& cancelled) {
    auto answer = ask_hidden("New " + std::string(what) + ": ");
    if (!answer) {
        say(kCancelled);
        cancelled = true;
        return {};
    }
    auto& first = *answer;
    if (first.empty()) {
        say(on_empty);
        cancelled = true;
        return {};
    }
    const bool digits =
        std::all_of(first.begin(), first.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (first.size() < min_length || first.size() > max_length || (digits_only && !digits)) {
        const auto length = max_length == std::numeric_limits<std::size_t>::max()
                                ? "at least " + std::to_string(min_length)
                                : std::to_string(min_length) + " to " + std::to_string(max_length);
        say("The " + std::string(what) + " must be " + length +
            (digits_only ? " digits, digits only" : " characters") + ". Again:\n");
        std::fill(first.begin(), first.end(), '\0');
        return {};
    }
    // Ctrl-C, Ctrl-D or the idle timeout here ends the whole dialog: taken
    // as a mismatch, it would ask again, and what is typed next, meant for
    // the command prompt, would become the secret.
    auto again = ask_hidden("The same again: ");
    if (!again) {
        std::fill(first.begin(), first.end(), '\0');
        say(kCancelled);
        cancelled = true;
        return {};
    }
    const bool same = *again == first;
    std::fill(again->begin(), again->end(), '\0');
    if (!same) {
        std::fill(first.begin(), first.end(), '\0');
        say("The two entries differ. Again:\n");
        return {};
    }
    return std::move(first);
}

bool Console::confirm(std::string_view question) {
    auto input =
        m_terminal.read_line(std::string(question) + " [y/N] ", false, m_appliance.settings().idle);
    if (input.kind != InputKind::line) {
        m_flow = flow_after(input);
        return false;
    }
    return input.text == "y" || input.text == "Y" || input.text == "yes";
}

std::string Console::ask_pem(std::string_view what) {
    say("Paste " + std::string(what) + " (PEM),\nthen an empty line. Ctrl-C cancels.\n");
    constexpr std::size_t kMaxPem = 64 * 1024;
    auto input = m_terminal.read_block(m_appliance.settings().idle, kMaxPem);
    if (input.kind == InputKind::too_long) {
        // The rest of the paste must not run as commands.
        m_terminal.discard_input(std::chrono::milliseconds(0));
        say("That is more than 64 KiB or has a line too long for a PEM; nothing changed.\n");
        return {};
    }
    if (input.kind != InputKind::line) {
        m_flow = flow_after(input);
        if (input.kind == InputKind::cancelled) {
            m_terminal.discard_input(std::chrono::milliseconds(0));
        }
        say("Cancelled; nothing changed.\n");
        return {};
    }
    return std::move(input.text);
}

void Console::logout(std::span<const std::string>) {
    m_flow = Flow::logged_out;
}

void Console::help(std::span<const std::string> arguments) {
    const std::string topic = arguments.empty() ? "" : arguments.front();
    bool any = false;
    for (const auto& command : commands()) {
        if (!topic.empty() && command.name.rfind(topic, 0) != 0) {
            continue;
        }
        any = true;
        say_usage(command);
    }
    if (!any) {
        say("No command starts with '" + topic.substr(0, 40) + "'.\n");
    }
    m_appliance.record("help", "", "shown");
}

void Console::say_usage(const Command& command) {
    std::string usage(command.usage);
    usage.resize(std::max<std::size_t>(usage.size(), 30), ' ');
    say("  " + usage + " " + std::string(command.help) + "\n");
}

std::span<const Command> Console::commands() {
    static const std::array<Command, 21> table{{
        {"help", "help [COMMAND]", "all commands, or those starting so", &Console::help},
        {"status", "status", "provisioning, HSM, TLS, modems, database, clock", &Console::status},
        {"hsm init", "hsm init", "initialise the HSM token, create the keys", &Console::hsm_init},
        {"hsm keys", "hsm keys", "the keys in the token, with versions", &Console::hsm_keys},
        {"hsm rotate", "hsm rotate KEY", "a new version of a key", &Console::hsm_rotate},
        {"tls csr", "tls csr [SUBJECT]", "make the TLS key in the HSM, print a CSR",
         &Console::tls_csr},
        {"tls install", "tls install", "paste the signed server certificate",
         &Console::tls_install},
        {"tls trust", "tls trust", "paste the CA of the portal's certificates",
         &Console::tls_trust},
        {"tls allow", "tls allow SUBJECT ROLE", "let a client in (portal or monitor)",
         &Console::tls_allow},
        {"tls deny", "tls deny SUBJECT", "take a client off the list", &Console::tls_deny},
        {"modem list", "modem list", "the modems and what the daemon sees of them",
         &Console::modem_list_command},
        {"modem pin", "modem pin NAME", "set a modem's SIM PIN (stored encrypted)",
         &Console::modem_pin},
        {"modem test", "modem test NUMBER", "send a test SMS, show its fate", &Console::modem_test},
        {"pincard issue", "pincard issue USER PATH", "issue a PINCard, write it as a PDF",
         &Console::pincard_issue},
        {"pincard block", "pincard block SERIAL [REASON]", "block a card", &Console::pincard_block},
        {"pincard revoke", "pincard revoke SERIAL", "revoke a card for good",
         &Console::pincard_revoke},
        {"backup", "backup PATH", "copy the database to a new file", &Console::backup},
        {"restore", "restore PATH", "replace the database with a backup", &Console::restore},
        {"audit verify", "audit verify", "check the audit log's MAC chain", &Console::audit_verify},
        {"audit export", "audit export PATH", "write the audit log as JSON lines",
         &Console::audit_export},
        {"logout", "logout", "end the session (Ctrl-D too)", &Console::logout},
    }};
    return table;
}

}  // namespace otpbox::provisioning::console
