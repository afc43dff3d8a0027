#pragma once

// A scripted modem for the gsm-modem tests: the master side of a real
// pseudo-terminal pair, answering each command line (ended by CR, or by
// Ctrl-Z for a PDU) with what its script returns.

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#include "otpbox/gsm/at_engine.hpp"

namespace otpbox::gsm::fake {

class ScriptedModem {
  public:
    using Script = std::function<std::string(const std::string& line)>;

    explicit ScriptedModem(Script script) : m_script(std::move(script)) {
        char name[256] = {};
        if (openpty(&m_master, &m_slave, name, nullptr, nullptr) != 0) {
            throw std::runtime_error("openpty failed");
        }
        m_path = name;
        m_thread = std::thread([this] { serve(); });
    }

    ~ScriptedModem() {
        m_stop = true;
        m_thread.join();
        close_master();
        ::close(m_slave);
    }

    [[nodiscard]] SerialSettings settings() const { return SerialSettings{m_path, 115200, false}; }

    void write(std::string_view bytes) {
        std::lock_guard lock(m_write_mutex);
        if (m_master >= 0) {
            (void)!::write(m_master, bytes.data(), bytes.size());
        }
    }

    void close_master() {
        std::lock_guard lock(m_write_mutex);
        if (m_master >= 0) {
            ::close(m_master);
            m_master = -1;
        }
    }

    [[nodiscard]] std::string received() {
        std::lock_guard lock(m_received_mutex);
        return m_received;
    }

  private:
    void serve() {
        std::string pending;
        while (!m_stop) {
            pollfd fd{m_master, POLLIN, 0};
            if (m_master < 0 || ::poll(&fd, 1, 20) <= 0 || !(fd.revents & POLLIN)) {
                continue;
            }
            char buffer[512];
            const auto count = ::read(m_master, buffer, sizeof buffer);
            if (count <= 0) {
                continue;
            }
            for (const char c : std::string_view(buffer, static_cast<std::size_t>(count))) {
                {
                    std::lock_guard lock(m_received_mutex);
                    m_received.push_back(c);
                }
                if (c == '\r' || c == '\x1a') {
                    write(m_script(pending + (c == '\x1a' ? "\x1a" : "")));
                    pending.clear();
                } else if (c != '\n') {
                    pending.push_back(c);
                }
            }
        }
    }

    Script m_script;
    int m_master = -1;
    int m_slave = -1;
    std::string m_path;
    std::mutex m_write_mutex;
    std::mutex m_received_mutex;
    std::string m_received;
    std::atomic<bool> m_stop{false};
    std::thread m_thread;
};

// A modem with a SIM, as far as the modem tests need one (TS 27.007 8.3 for
// the PIN, 7.2 for registration, TS 27.005 3.5.1 for sending).
struct SimBehaviour {
    std::string pin{};        // empty: the SIM asks for none
    bool puk = false;         // the SIM asks for its PUK
    int busy_after_pin = 0;   // AT+CPIN? answers +CME ERROR: 14 this often after the PIN
    int creg = 1;             // <stat> of AT+CREG?
    int cereg = -1;           // <stat> of AT+CEREG?, -1: ERROR (no LTE)
    std::string after_pdu{};  // the answer to a PDU; empty: +CMGS with a counting reference
    bool prompt = true;       // false: AT+CMGS gets no prompt
};

inline ScriptedModem::Script sim_modem(SimBehaviour behaviour) {
    struct State {
        bool unlocked = false;
        int busy = 0;
        int reference = 0;
    };
    auto state = std::make_shared<State>();
    state->unlocked = behaviour.pin.empty() && !behaviour.puk;
    return [behaviour, state](const std::string& line) -> std::string {
        const std::string ok = "\r\nOK\r\n";
        if (line.ends_with("\x1a")) {
            if (!behaviour.after_pdu.empty()) {
                return behaviour.after_pdu;
            }
            return "\r\n+CMGS: " + std::to_string(state->reference++ % 256) + "\r\n" + ok;
        }
        if (line == "AT+CPIN?") {
            if (state->unlocked && state->busy > 0) {
                --state->busy;
                return "\r\n+CME ERROR: 14\r\n";
            }
            const char* pin_state =
                state->unlocked ? "READY" : (behaviour.puk ? "SIM PUK" : "SIM PIN");
            return std::string("\r\n+CPIN: ") + pin_state + "\r\n" + ok;
        }
        if (line.starts_with("AT+CPIN=")) {
            if (behaviour.puk || line != "AT+CPIN=\"" + behaviour.pin + "\"") {
                return "\r\n+CME ERROR: 16\r\n";
            }
            state->unlocked = true;
            state->busy = behaviour.busy_after_pin;
            return ok;
        }
        if (line == "AT+CREG?") {
            return "\r\n+CREG: 0," + std::to_string(behaviour.creg) + "\r\n" + ok;
        }
        if (line == "AT+CEREG?") {
            return behaviour.cereg < 0
                       ? "\r\nERROR\r\n"
                       : "\r\n+CEREG: 0," + std::to_string(behaviour.cereg) + "\r\n" + ok;
        }
        if (line == "AT+CSQ") {
            return "\r\n+CSQ: 17,99\r\n" + ok;
        }
        if (line.starts_with("AT+CMGS=")) {
            return behaviour.prompt ? "\r\n> " : "";
        }
        return ok;
    };
}

}  // namespace otpbox::gsm::fake
