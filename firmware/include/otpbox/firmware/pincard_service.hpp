#pragma once

// PINCards: issued pending, activated by their first successful use (which
// replaces the user's previous active card), blocked and unblocked by the
// user, revoked for good. No per-card secret is stored: cell values are
// derived in the HSM from the serial and the key version.

#include <string>
#include <vector>

#include "otpbox/firmware/context.hpp"

namespace otpbox::firmware {

struct IssuedCard {
    std::string serial;
    std::string state;
    CardLayout layout;
    std::vector<std::vector<std::string>> grid;  // grid[row][column]
};

struct CardSummary {
    std::string serial;
    std::string state;
    TimePoint issued_at;
};

struct StoredCard {
    std::string serial;
    std::string user;
    std::string state;
    unsigned key_version = 1;
    CardLayout layout;
};

class PincardService {
  public:
    explicit PincardService(Context& context) : m_context(context) {}

    IssuedCard issue(const std::string& user, const std::string& actor);
    [[nodiscard]] std::vector<CardSummary> list(const std::string& user);

    // Each returns the new state; refuses unknown_card and invalid_state.
    std::string block(const std::string& serial, const std::string& reason,
                      const std::string& actor);
    std::string unblock(const std::string& serial, const std::string& actor);
    std::string revoke(const std::string& serial, const std::string& actor);

    // Revokes every card of the user that is not final yet (erasure).
    void revoke_all(const std::string& user, const std::string& actor);

    // Inside a transaction: the user's active and pending cards.
    [[nodiscard]] std::vector<StoredCard> usable_cards(const std::string& user);

    // Inside a transaction: activates the card, replacing the active one.
    void activate(const StoredCard& card, TimePoint now);

    // The card's value of cell "C5".
    [[nodiscard]] std::string cell_value(const StoredCard& card, const std::string& cell);

    [[nodiscard]] static std::string cell_name(unsigned column, unsigned row);

  private:
    std::string change_state(const std::string& serial, const std::string& action,
                             const std::string& actor, const std::string& reason);

    Context& m_context;
};

}  // namespace otpbox::firmware
