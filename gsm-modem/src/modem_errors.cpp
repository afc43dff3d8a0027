#include <algorithm>
#include <array>

#include "otpbox/gsm/at_error.hpp"
#include "otpbox/gsm/modem.hpp"

namespace otpbox::gsm {
namespace {

// RP causes of TS 24.011 E.2 that refuse this destination or message for
// good, and TP-FCS values of TS 23.040 9.2.3.22 about the message itself
// (0x80-0xBF: protocol identifier, data coding, command, TPDU) or the
// destination (0xC3 invalid SME address, 0xC4 SME barred, 0xC6/0xC7 validity
// period format not supported).
[[nodiscard]] bool is_permanent_cms(int code) noexcept {
    static constexpr std::array<int, 20> kPermanent{1,  8,  10, 21,  29,  30,  50,  69,  95,  96,
                                                    97, 98, 99, 111, 127, 195, 196, 198, 199, 304};
    return (code >= 0x80 && code <= 0xbf) ||
           std::find(kPermanent.begin(), kPermanent.end(), code) != kPermanent.end();
}

// ME and SIM failures (TS 27.005 3.2.5, 300 and up) and a missing SMS
// service subscription: the modem cannot send anything now.
[[nodiscard]] bool is_modem_cms(int code) noexcept {
    return code == 0xc1 || (code >= 300 && code <= 331 && code != 304 && code != 305);
}

}  // namespace

SendFault classify_send_error(const std::error_code& code) noexcept {
    if (code.category() == cms_category()) {
        if (is_permanent_cms(code.value())) {
            return SendFault::permanent;
        }
        return is_modem_cms(code.value()) ? SendFault::modem : SendFault::temporary;
    }
    return SendFault::modem;
}

}  // namespace otpbox::gsm
