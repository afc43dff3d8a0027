#include "otpbox/gsm/at_error.hpp"

#include <map>

namespace otpbox::gsm {
namespace {

class AtCategory final : public std::error_category {
  public:
    const char* name() const noexcept override { return "at"; }
    std::string message(int value) const override {
        switch (static_cast<AtErrc>(value)) {
            case AtErrc::timeout:
                return "no final result before the deadline";
            case AtErrc::error:
                return "ERROR";
            case AtErrc::no_prompt:
                return "no prompt after AT+CMGS";
            case AtErrc::port_closed:
                return "serial port unusable";
            case AtErrc::bad_response:
                return "unreadable response";
            case AtErrc::not_registered:
                return "not registered on a network";
            case AtErrc::sim_locked:
                return "SIM locked";
        }
        return "unknown AT error";
    }
};

// Names of TS 27.007 9.2.1 and 9.2.2; the ones a modem for SMS is likely to give.
const std::map<int, const char*>& cme_names() {
    static const std::map<int, const char*> names{
        {0, "phone failure"},
        {1, "no connection to phone"},
        {3, "operation not allowed"},
        {4, "operation not supported"},
        {5, "PH-SIM PIN required"},
        {10, "SIM not inserted"},
        {11, "SIM PIN required"},
        {12, "SIM PUK required"},
        {13, "SIM failure"},
        {14, "SIM busy"},
        {15, "SIM wrong"},
        {16, "incorrect password"},
        {17, "SIM PIN2 required"},
        {18, "SIM PUK2 required"},
        {20, "memory full"},
        {21, "invalid index"},
        {22, "not found"},
        {23, "memory failure"},
        {30, "no network service"},
        {31, "network timeout"},
        {32, "network not allowed - emergency calls only"},
        {100, "unknown"},
    };
    return names;
}

// TS 27.005 3.2.5: 0...127 are the RP cause values of TS 24.011 E.2, 128...255
// the TP-FCS values of TS 23.040 9.2.3.22, 300 and up the ME/TA errors.
const std::map<int, const char*>& cms_names() {
    static const std::map<int, const char*> names{
        {1, "unassigned (unallocated) number"},
        {8, "operator determined barring"},
        {10, "call barred"},
        {21, "short message transfer rejected"},
        {27, "destination out of service"},
        {28, "unidentified subscriber"},
        {29, "facility rejected"},
        {30, "unknown subscriber"},
        {38, "network out of order"},
        {41, "temporary failure"},
        {42, "congestion"},
        {47, "resources unavailable, unspecified"},
        {50, "requested facility not subscribed"},
        {69, "requested facility not implemented"},
        {81, "invalid short message transfer reference value"},
        {95, "invalid message, unspecified"},
        {96, "invalid mandatory information"},
        {97, "message type non-existent or not implemented"},
        {98, "message not compatible with short message protocol state"},
        {99, "information element non-existent or not implemented"},
        {111, "protocol error, unspecified"},
        {127, "interworking, unspecified"},
        {300, "ME failure"},
        {301, "SMS service of ME reserved"},
        {302, "operation not allowed"},
        {303, "operation not supported"},
        {304, "invalid PDU mode parameter"},
        {305, "invalid text mode parameter"},
        {310, "SIM not inserted"},
        {311, "SIM PIN required"},
        {312, "PH-SIM PIN required"},
        {313, "SIM failure"},
        {314, "SIM busy"},
        {315, "SIM wrong"},
        {316, "SIM PUK required"},
        {317, "SIM PIN2 required"},
        {318, "SIM PUK2 required"},
        {320, "memory failure"},
        {321, "invalid memory index"},
        {322, "memory full"},
        {330, "SMSC address unknown"},
        {331, "no network service"},
        {332, "network timeout"},
        {340, "no +CNMA acknowledgement expected"},
        {500, "unknown error"},
    };
    return names;
}

class NumberedCategory final : public std::error_category {
  public:
    NumberedCategory(const char* name, const std::map<int, const char*>& names)
        : m_name(name), m_names(names) {}
    const char* name() const noexcept override { return m_name; }
    std::string message(int value) const override {
        const auto found = m_names.find(value);
        const std::string text = found != m_names.end() ? found->second : "unlisted";
        return std::string(m_name) + " " + std::to_string(value) + " (" + text + ")";
    }

  private:
    const char* m_name;
    const std::map<int, const char*>& m_names;
};

}  // namespace

const std::error_category& at_category() noexcept {
    static const AtCategory category;
    return category;
}

const std::error_category& cme_category() noexcept {
    static const NumberedCategory category("CME", cme_names());
    return category;
}

const std::error_category& cms_category() noexcept {
    static const NumberedCategory category("CMS", cms_names());
    return category;
}

std::error_code make_error_code(AtErrc errc) noexcept {
    return {static_cast<int>(errc), at_category()};
}

std::error_code cme_error(int code) noexcept {
    return {code, cme_category()};
}

std::error_code cms_error(int code) noexcept {
    return {code, cms_category()};
}

}  // namespace otpbox::gsm
