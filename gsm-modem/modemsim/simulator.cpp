#include "simulator.hpp"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace otpbox::modemsim {
namespace {

// A host that stops reading must not make the simulator grow without end;
// a real modem drops what its buffers cannot hold.
constexpr std::size_t kMaxBuffered = 64 * 1024;
constexpr std::chrono::milliseconds kIdleWait{1000};
// Closing the master discards what the host has not read yet; the last
// answer gets this long to be read before the line drops.
constexpr std::chrono::milliseconds kHangupGrace{2000};
// The kernel moves written bytes to the host's side a moment later, so an
// empty queue right after the write does not yet mean the host read them.
constexpr std::chrono::milliseconds kHangupSettle{200};
constexpr std::chrono::milliseconds kDrainPoll{20};

[[noreturn]] void throw_errno(const char* what) {
    throw std::system_error(errno, std::generic_category(), what);
}

}  // namespace

Simulator::Simulator(const SimOptions& options, PseudoTerminal& pty, ModemSession& session)
    : m_options(options),
      m_pty(pty),
      m_session(session),
      m_next_noise(Clock::now() + options.noise) {
    if (!options.cmgs_arrivals.empty()) {
        m_cmgs_arrivals.open(options.cmgs_arrivals, std::ios::app);
        if (!m_cmgs_arrivals) {
            throw std::runtime_error("cannot open " + options.cmgs_arrivals.string());
        }
    }
}

void Simulator::run(const volatile std::sig_atomic_t& stop, const sigset_t& signal_mask) {
    while (stop == 0) {
        const auto now = Clock::now();
        release_due(now);
        feed_input(now);
        emit_noise(now);
        write_output();
        if (hung_up(now)) {
            return;
        }
        wait(now, signal_mask);
    }
}

void Simulator::release_due(Clock::time_point now) {
    std::sort(m_scheduled.begin(), m_scheduled.end(), [](const auto& a, const auto& b) {
        return a.due != b.due ? a.due < b.due : a.order < b.order;
    });
    auto due_end = m_scheduled.begin();
    for (; due_end != m_scheduled.end() && due_end->due <= now; ++due_end) {
        m_output += due_end->text;
        m_blocking -= due_end->blocking ? 1 : 0;
    }
    m_scheduled.erase(m_scheduled.begin(), due_end);
}

// One byte at a time, so that a command whose answer is delayed holds back
// the commands after it, as a modem busy with AT+CMGS does.
void Simulator::feed_input(Clock::time_point now) {
    std::size_t used = 0;
    while (m_blocking == 0 && used < m_input.size() && !m_session.hangup_due()) {
        const auto arrived = take_arrival();
        if (m_session.between_commands()) {
            m_command_arrived = arrived;
        }
        const bool was_taking_pdu = m_session.taking_pdu();
        schedule(m_session.feed(m_input[used++]), now);
        if (!was_taking_pdu && m_session.taking_pdu()) {
            record_cmgs_arrival();
        }
    }
    m_input.erase(0, used);
}

void Simulator::schedule(std::vector<Output> outputs, Clock::time_point now) {
    for (auto& output : outputs) {
        if (output.delay.count() == 0 && m_scheduled.empty()) {
            m_output += output.text;
            continue;
        }
        m_scheduled.push_back(
            {now + output.delay, m_next_order++, std::move(output.text), output.blocking});
        m_blocking += output.blocking ? 1 : 0;
    }
}

// When the next byte of m_input was read.
Simulator::Clock::time_point Simulator::take_arrival() {
    auto& oldest = m_arrivals.front();
    const auto at = oldest.at;
    if (--oldest.bytes == 0) {
        m_arrivals.pop_front();
    }
    return at;
}

// Flushed at once: a bench reads the file as soon as the host has its
// +CMGS answer, which comes later.
void Simulator::record_cmgs_arrival() {
    if (!m_cmgs_arrivals.is_open()) {
        return;
    }
    const auto since_boot =
        std::chrono::duration_cast<std::chrono::nanoseconds>(m_command_arrived.time_since_epoch());
    m_cmgs_arrivals << since_boot.count() << '\n' << std::flush;
}

void Simulator::emit_noise(Clock::time_point now) {
    if (m_options.noise.count() == 0 || now < m_next_noise) {
        return;
    }
    m_output += m_session.noise_line();
    m_next_noise = now + m_options.noise;
}

void Simulator::write_output() {
    while (!m_output.empty()) {
        const ssize_t written = ::write(m_pty.master_fd(), m_output.data(), m_output.size());
        if (written < 0 && errno == EINTR) {
            continue;
        }
        if (written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        if (written < 0) {
            throw_errno("write pty");
        }
        m_output.erase(0, static_cast<std::size_t>(written));
    }
    if (m_output.size() > kMaxBuffered) {
        m_output.clear();
    }
}

void Simulator::read_input() {
    char buffer[4096];
    for (;;) {
        const ssize_t count = ::read(m_pty.master_fd(), buffer, sizeof buffer);
        if (count < 0 && errno == EINTR) {
            continue;
        }
        if (count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EIO)) {
            return;
        }
        if (count < 0) {
            throw_errno("read pty");
        }
        if (count == 0) {
            return;
        }
        if (m_input.size() < kMaxBuffered) {
            m_input.append(buffer, static_cast<std::size_t>(count));
            m_arrivals.push_back({static_cast<std::size_t>(count), Clock::now()});
        }
    }
}

void Simulator::wait(Clock::time_point now, const sigset_t& signal_mask) {
    auto deadline = now + kIdleWait;
    if (!m_scheduled.empty()) {
        deadline = std::min(
            deadline, std::min_element(m_scheduled.begin(), m_scheduled.end(),
                                       [](const auto& a, const auto& b) { return a.due < b.due; })
                          ->due);
    }
    if (m_options.noise.count() > 0) {
        deadline = std::min(deadline, m_next_noise);
    }
    if (m_hangup_since) {
        deadline = std::min(deadline, now + kDrainPoll);
    }
    const bool input_waiting = m_blocking == 0 && !m_input.empty();
    const auto left =
        input_waiting ? Clock::duration::zero() : std::max(Clock::duration::zero(), deadline - now);
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(left);
    const timespec timeout{static_cast<time_t>(seconds.count()),
                           static_cast<long>((left - seconds).count())};

    pollfd fd{m_pty.master_fd(), POLLIN, 0};
    if (!m_output.empty()) {
        fd.events |= POLLOUT;
    }
    const int ready = ::ppoll(&fd, 1, &timeout, &signal_mask);
    if (ready < 0 && errno != EINTR) {
        throw_errno("ppoll");
    }
    if (ready > 0 && (fd.revents & POLLIN) != 0) {
        read_input();
    }
}

bool Simulator::hung_up(Clock::time_point now) {
    if (!m_session.hangup_due() || m_blocking != 0 || !m_output.empty()) {
        return false;
    }
    if (!m_hangup_since) {
        m_hangup_since = now;
    }
    const auto waited = now - *m_hangup_since;
    return (waited >= kHangupSettle && m_pty.drained()) || waited >= kHangupGrace;
}

}  // namespace otpbox::modemsim
