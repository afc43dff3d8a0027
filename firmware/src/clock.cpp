#include "otpbox/firmware/clock.hpp"

#include <sys/timex.h>

namespace otpbox::firmware {

bool clock_synchronized() {
    timex tx{};
    const int state = ::adjtimex(&tx);
    return state != TIME_ERROR && (tx.status & STA_UNSYNC) == 0;
}

}  // namespace otpbox::firmware
