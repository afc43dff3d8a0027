#pragma once

// otpbox-console: one technician session after another on a serial line.
// A factory-fresh appliance first asks for a console password and offers to
// initialise the HSM token; afterwards every session starts with the
// password and ends with logout, Ctrl-D or the idle timeout.

#include <atomic>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "console/appliance.hpp"
#include "console/terminal.hpp"

namespace otpbox::provisioning::console {

class Console;

struct Command {
    std::string_view name;   // one or two words: "status", "tls allow"
    std::string_view usage;  // "tls allow SUBJECT ROLE"
    std::string_view help;   // one line, under 80 columns
    void (Console::*run)(std::span<const std::string> arguments);
};

// A command's words; "double quotes" keep spaces inside one word.
[[nodiscard]] std::vector<std::string> split_words(std::string_view line);

// Words joined again by single spaces: an unquoted subject or reason.
[[nodiscard]] std::string join_words(std::span<const std::string> words);

class Console {
  public:
    Console(Appliance& appliance, Terminal& terminal, const std::atomic<bool>& stop);

    // Serves sessions until stop is set.
    void run();

    [[nodiscard]] static std::span<const Command> commands();

    // The commands (console_commands_*.cpp).
    void help(std::span<const std::string> arguments);
    void status(std::span<const std::string> arguments);
    void hsm_init(std::span<const std::string> arguments);
    void hsm_keys(std::span<const std::string> arguments);
    void hsm_rotate(std::span<const std::string> arguments);
    void tls_csr(std::span<const std::string> arguments);
    void tls_install(std::span<const std::string> arguments);
    void tls_trust(std::span<const std::string> arguments);
    void tls_allow(std::span<const std::string> arguments);
    void tls_deny(std::span<const std::string> arguments);
    void modem_list(std::span<const std::string> arguments);
    void modem_list_command(std::span<const std::string> arguments);
    void modem_pin(std::span<const std::string> arguments);
    void modem_test(std::span<const std::string> arguments);
    void pincard_issue(std::span<const std::string> arguments);
    void pincard_block(std::span<const std::string> arguments);
    void pincard_revoke(std::span<const std::string> arguments);
    void backup(std::span<const std::string> arguments);
    void restore(std::span<const std::string> arguments);
    void audit_verify(std::span<const std::string> arguments);
    void audit_export(std::span<const std::string> arguments);
    void logout(std::span<const std::string> arguments);

  private:
    // Why a session ended, or that it goes on.
    enum class Flow { go_on, logged_out, stopped };

    void first_boot();
    [[nodiscard]] bool log_in();
    // Once per run: the delay after wrong passwords typed before the
    // console (re)started, what is left of it, with input dropped.
    void wait_out_earlier_failures();
    // Writes m_failed_logins beside the password file, or removes the file at 0.
    void keep_failed_logins();
    void session();
    // Reads the configuration again before a command; false when it is
    // broken and the command is not one that works without it (help, status
    // and logout, on what was read last).
    [[nodiscard]] bool configuration_read(const std::string& line);
    void execute(const std::string& line);
    [[nodiscard]] Flow flow_after(const Input& input);

    // Asks twice for a new secret, hidden; "" when cancelled or not alike.
    // The length is checked before the second time. An empty first answer
    // cancels, saying `on_empty`; Ctrl-C, Ctrl-D or the idle timeout at
    // either prompt cancels, saying "Cancelled; nothing changed.".
    [[nodiscard]] std::string ask_new_secret(
        std::string_view what, std::size_t min_length, bool digits_only,
        std::size_t max_length = std::numeric_limits<std::size_t>::max(),
        std::string_view on_empty = "Cancelled; nothing changed.\n");
    [[nodiscard]] std::string ask_new_secret_once(std::string_view what, std::size_t min_length,
                                                  std::size_t max_length, bool digits_only,
                                                  std::string_view on_empty, bool& cancelled);
    // A hidden line; none when cancelled (Ctrl-C, Ctrl-D, idle, stopping),
    // "" for a line too long.
    [[nodiscard]] std::optional<std::string> ask_hidden(std::string_view prompt);
    // A yes/no question; false unless "yes" or "y".
    [[nodiscard]] bool confirm(std::string_view question);
    // Pasted PEM; "" when cancelled.
    [[nodiscard]] std::string ask_pem(std::string_view what);

    void say(std::string_view text) { m_terminal.print(text); }
    // One line of help: the command's usage and what it does.
    void say_usage(const Command& command);
    void initialise_token();

    Appliance& m_appliance;
    Terminal& m_terminal;
    const std::atomic<bool>& m_stop;
    Flow m_flow = Flow::go_on;
    unsigned m_failed_logins = 0;
    bool m_failed_logins_read = false;
    std::string m_config_problem;  // why the configuration cannot be read, or ""
};

}  // namespace otpbox::provisioning::console
