#include "otpbox/firmware/pincard_service.hpp"

#include <string_view>

#include "otpbox/firmware/audit_log.hpp"
#include "otpbox/firmware/refusal.hpp"
#include "otpbox/firmware/users.hpp"

namespace otpbox::firmware {

namespace {

StoredCard read_card(Statement& row) {
    StoredCard card;
    card.serial = row.text(0);
    card.user = row.text(1);
    card.state = row.text(2);
    card.key_version = static_cast<unsigned>(row.integer(3));
    card.layout.columns = static_cast<unsigned>(row.integer(4));
    card.layout.rows = static_cast<unsigned>(row.integer(5));
    card.layout.cell_length = static_cast<unsigned>(row.integer(6));
    card.layout.alphabet = row.text(7);
    return card;
}

constexpr std::string_view kCardColumns =
    "serial, user_id, state, key_version, columns, rows, cell_length, alphabet";

// The state a card moves to, or "" when the transition is not allowed.
std::string next_state(const std::string& action, const std::string& state,
                       const std::string& before_block) {
    if (action == "block") {
        return state == "active" || state == "pending" ? "blocked" : "";
    }
    if (action == "unblock") {
        return state == "blocked" ? before_block : "";
    }
    if (action == "revoke") {
        return state == "revoked" || state == "replaced" ? "" : "revoked";
    }
    return "";
}

}  // namespace

std::string PincardService::cell_name(unsigned column, unsigned row) {
    return std::string(1, static_cast<char>('A' + column)) + std::to_string(row + 1);
}

IssuedCard PincardService::issue(const std::string& user, const std::string& actor) {
    const auto& layout_config = m_context.config.pincard;
    IssuedCard card;
    card.serial = m_context.secrets.random_serial();
    card.state = "pending";
    card.layout = {layout_config.columns, layout_config.rows, layout_config.cell_length,
                   layout_config.alphabet};

    const StoredCard stored{card.serial, user, card.state, m_context.secrets.card_key_version(),
                            card.layout};
    for (unsigned row = 0; row < card.layout.rows; ++row) {
        auto& cells = card.grid.emplace_back();
        for (unsigned column = 0; column < card.layout.columns; ++column) {
            cells.push_back(cell_value(stored, cell_name(column, row)));
        }
    }

    const auto pseudonym = m_context.secrets.pseudonym(user);
    const auto now = m_context.clock.now();
    m_context.database.transaction([&] {
        (void)load_user(m_context.database, user, now);
        m_context.database
            .prepare(
                "INSERT INTO pincards (serial, user_id, state, key_version, columns, rows, "
                "cell_length, alphabet, issued_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)")
            .bind(1, card.serial)
            .bind(2, user)
            .bind(3, card.state)
            .bind(4, stored.key_version)
            .bind(5, card.layout.columns)
            .bind(6, card.layout.rows)
            .bind(7, card.layout.cell_length)
            .bind(8, card.layout.alphabet)
            .bind(9, to_millis(now))
            .bind(10, to_millis(now))
            .run();
        m_context.audit.record({actor, "pincard.issue", pseudonym + " " + card.serial, "ok"}, now);
    });
    return card;
}

std::vector<CardSummary> PincardService::list(const std::string& user) {
    return m_context.database.read([&] {
        std::vector<CardSummary> cards;
        auto rows = m_context.database.prepare(
            "SELECT serial, state, issued_at FROM pincards WHERE user_id = ? "
            "ORDER BY issued_at, serial");
        rows.bind(1, user);
        while (rows.step()) {
            cards.push_back({rows.text(0), rows.text(1), from_millis(rows.integer(2))});
        }
        return cards;
    });
}

std::string PincardService::change_state(const std::string& serial, const std::string& action,
                                         const std::string& actor, const std::string& reason) {
    const auto now = m_context.clock.now();
    return m_context.database.transaction([&] {
        auto row = m_context.database.prepare(
            "SELECT state, state_before_block, user_id FROM pincards WHERE serial = ?");
        row.bind(1, serial);
        if (!row.step()) {
            throw Refused(Reason::unknown_card, "no PINCard has this serial");
        }
        const auto state = row.text(0);
        const auto before_block = row.text(1);
        const auto user = row.text(2);
        const auto next = next_state(action, state, before_block);
        const auto pseudonym = m_context.secrets.pseudonym(user);
        if (next.empty()) {
            const auto done = action + (action.back() == 'e' ? "d" : "ed");
            const bool vowel = std::string_view("aeiou").find(state.front()) != std::string::npos;
            throw Refused(Reason::invalid_state,
                          (vowel ? "an " : "a ") + state + " card cannot be " + done);
        }
        m_context.database
            .prepare(
                "UPDATE pincards SET state = ?, state_before_block = ?, block_reason = ?, "
                "updated_at = ? WHERE serial = ?")
            .bind(1, next)
            .bind(2, action == "block" ? state : std::string())
            .bind(3, action == "block" ? reason : std::string())
            .bind(4, to_millis(now))
            .bind(5, serial)
            .run();
        m_context.audit.record({actor, "pincard." + action, pseudonym + " " + serial, "ok"}, now);
        return next;
    });
}

std::string PincardService::block(const std::string& serial, const std::string& reason,
                                  const std::string& actor) {
    return change_state(serial, "block", actor, reason);
}

std::string PincardService::unblock(const std::string& serial, const std::string& actor) {
    return change_state(serial, "unblock", actor, "");
}

std::string PincardService::revoke(const std::string& serial, const std::string& actor) {
    return change_state(serial, "revoke", actor, "");
}

void PincardService::revoke_all(const std::string& user, const std::string& actor) {
    for (const auto& card : list(user)) {
        if (card.state != "revoked" && card.state != "replaced") {
            (void)revoke(card.serial, actor);
        }
    }
}

std::vector<StoredCard> PincardService::usable_cards(const std::string& user) {
    std::vector<StoredCard> cards;
    auto rows = m_context.database.prepare(
        "SELECT " + std::string(kCardColumns) +
        " FROM pincards WHERE user_id = ? AND state IN ('active', 'pending') "
        "ORDER BY state = 'active' DESC, issued_at DESC");
    rows.bind(1, user);
    while (rows.step()) {
        cards.push_back(read_card(rows));
    }
    return cards;
}

void PincardService::activate(const StoredCard& card, TimePoint now) {
    if (card.state == "active") {
        return;
    }
    m_context.database
        .prepare(
            "UPDATE pincards SET state = 'replaced', updated_at = ? "
            "WHERE user_id = ? AND state = 'active'")
        .bind(1, to_millis(now))
        .bind(2, card.user)
        .run();
    // A blocked earlier card that was active before its block is replaced
    // too: unblocking it must not bring back a second active card.
    m_context.database
        .prepare(
            "UPDATE pincards SET state_before_block = 'replaced' "
            "WHERE user_id = ? AND state = 'blocked' AND state_before_block = 'active'")
        .bind(1, card.user)
        .run();
    m_context.database
        .prepare("UPDATE pincards SET state = 'active', updated_at = ? WHERE serial = ?")
        .bind(1, to_millis(now))
        .bind(2, card.serial)
        .run();
}

std::string PincardService::cell_value(const StoredCard& card, const std::string& cell) {
    return m_context.secrets.card_cell(card.serial, card.key_version, cell, card.layout);
}

}  // namespace otpbox::firmware
