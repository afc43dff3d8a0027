#pragma once

// Errors of the AT dialogue with a modem: the engine's own failures (timeout,
// missing prompt, port closed), a plain ERROR, and the numbered +CME ERROR
// (3GPP TS 27.007 9.2) and +CMS ERROR (TS 27.005 3.2.5) results, each in its
// own std::error_category so they travel alongside serial and system errors.

#include <memory>
#include <string>
#include <system_error>

namespace otpbox::gsm {

enum class AtErrc {
    timeout = 1,     // no final result before the deadline
    error,           // a plain "ERROR" final result
    no_prompt,       // AT+CMGS gave no "> " prompt
    port_closed,     // the serial port failed or the other end hung up
    bad_response,    // a result we could not read (e.g. +CMGS without a reference)
    not_registered,  // neither home nor roaming network
    sim_locked,      // the SIM needs what otpbox cannot or must not give again
};

[[nodiscard]] const std::error_category& at_category() noexcept;
[[nodiscard]] const std::error_category& cme_category() noexcept;
[[nodiscard]] const std::error_category& cms_category() noexcept;

[[nodiscard]] std::error_code make_error_code(AtErrc errc) noexcept;
[[nodiscard]] std::error_code cme_error(int code) noexcept;
[[nodiscard]] std::error_code cms_error(int code) noexcept;

// A failed AT exchange. what() names the command (never its arguments when
// they hold a PIN or a PDU) and the result.
class AtError : public std::system_error {
  public:
    AtError(std::error_code code, const std::string& what)
        : std::system_error(code, what), m_reason(std::make_shared<const std::string>(what)) {}

    // what() without the result's name after it: for a locked SIM, the
    // plain reason a person reads.
    [[nodiscard]] const std::string& reason() const noexcept { return *m_reason; }

  private:
    std::shared_ptr<const std::string> m_reason;  // shared: copying an exception must not throw
};

}  // namespace otpbox::gsm

template <>
struct std::is_error_code_enum<otpbox::gsm::AtErrc> : std::true_type {};
