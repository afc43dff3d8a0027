#pragma once

// Logins and their challenges: which second factor a login asks for (the
// rules of day mode, cards and phones), OTPs sent by SMS, and the answers,
// with attempts per challenge and locks per user.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "otpbox/firmware/context.hpp"
#include "otpbox/firmware/pincard_service.hpp"
#include "otpbox/firmware/users.hpp"

namespace otpbox::firmware {

struct Challenge {
    std::string id;
    std::string method;              // "pincard" or "sms"
    std::vector<std::string> cells;  // pincard
    std::string masked;              // sms
    std::string sms_id;              // sms
    TimePoint expires_at;
};

class ChallengeService {
  public:
    ChallengeService(Context& context, PincardService& cards)
        : m_context(context), m_cards(cards) {}

    Challenge login(const std::string& user, const std::string& actor);
    Challenge request_otp(const std::string& user, const std::string& actor);

    // Returns when accepted; refuses gone, locked, invalid_response, rejected.
    void verify(const std::string& challenge, const std::string& response,
                const std::string& actor);

  private:
    struct SmsToSend;
    struct VerifyOutcome;
    struct Expected;

    struct Made;
    // A new challenge for a user who is not locked out: `choose` makes it in
    // the transaction that also records it in the audit log and queues its SMS.
    Challenge new_challenge(
        const std::string& user, const std::string& actor,
        const std::function<Made(const UserRow&, TimePoint, SmsToSend&)>& choose);
    Challenge pincard_challenge(const std::string& user, TimePoint now);
    Challenge sms_challenge(const UserRow& row, TimePoint now, SmsToSend& out);
    void refuse_if_over_sms_limit(const std::string& user, TimePoint now);
    void supersede_open_otps(const std::string& user, TimePoint now);
    // Queues the SMS in the caller's transaction; the modem pool is woken
    // once it commits.
    void queue(const SmsToSend& sms);
    bool response_well_formed(const std::string& method, const std::string& response);
    // What the answer to a challenge is compared with, worked out in the HSM
    // before the answer's transaction.
    Expected expected_answers(const std::string& challenge, const std::string& response);
    bool otp_matches(const std::string& challenge, const std::string& response,
                     const std::vector<std::uint8_t>& code_mac, const Expected& expected);
    bool pincard_matches(const std::string& user, const std::vector<std::string>& cells,
                         const std::string& response, TimePoint now, const Expected& expected);

    Context& m_context;
    PincardService& m_cards;
};

}  // namespace otpbox::firmware
