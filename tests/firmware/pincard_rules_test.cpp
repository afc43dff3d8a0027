// The PINCard rules: layout, derivation, lifecycle, stable challenges.

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <optional>
#include <set>
#include <thread>

#include "service_fixture.hpp"

namespace otpbox::firmware {
namespace {

using namespace std::chrono_literals;
using testing::kActor;
using testing::refusal_of;
using testing::ServiceFixture;

TEST(Pincard_Issue, GridHasTheConfiguredLayoutAndIsDerivedAgain) {
    ServiceFixture f;
    const auto card = f.cards->issue("alice", kActor);

    EXPECT_EQ(card.state, "pending");
    ASSERT_EQ(card.grid.size(), 8u);
    std::set<std::string> distinct;
    for (const auto& row : card.grid) {
        ASSERT_EQ(row.size(), 8u);
        for (const auto& cell : row) {
            ASSERT_EQ(cell.size(), 2u);
            EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(cell[0])) &&
                        std::isdigit(static_cast<unsigned char>(cell[1])));
            distinct.insert(cell);
        }
    }
    // 64 cells of 100 values: a constant or broken derivation shows here.
    EXPECT_GT(distinct.size(), 30u);

    const StoredCard stored{card.serial, "alice", "pending", 1, card.layout};
    EXPECT_EQ(f.cards->cell_value(stored, "C5"), card.grid[4][2]);
    EXPECT_EQ(f.cards->cell_value(stored, "H8"), card.grid[7][7]);
}

TEST(Pincard_Issue, TwoCardsHaveDifferentSerialsAndGrids) {
    ServiceFixture f;
    const auto first = f.cards->issue("alice", kActor);
    const auto second = f.cards->issue("alice", kActor);
    EXPECT_NE(first.serial, second.serial);
    EXPECT_NE(first.grid, second.grid);
    EXPECT_EQ(f.cards->list("alice").size(), 2u);
    EXPECT_TRUE(f.cards->list("bob").empty());
}

TEST(Pincard_Login, NamesThreeDistinctCellsOnTheCard) {
    ServiceFixture f;
    (void)f.cards->issue("alice", kActor);
    const auto challenge = f.challenges->login("alice", kActor);
    EXPECT_EQ(challenge.method, "pincard");
    ASSERT_EQ(challenge.cells.size(), 3u);
    const std::set<std::string> cells(challenge.cells.begin(), challenge.cells.end());
    EXPECT_EQ(cells.size(), 3u);
    for (const auto& cell : challenge.cells) {
        EXPECT_GE(cell[0], 'A');
        EXPECT_LE(cell[0], 'H');
        const int row = std::stoi(cell.substr(1));
        EXPECT_GE(row, 1);
        EXPECT_LE(row, 8);
    }
    EXPECT_EQ(challenge.expires_at, f.clock.now() + 300s);
}

TEST(Pincard_Verify, RightAnswerActivatesThePendingCardOnce) {
    ServiceFixture f;
    const auto card = f.cards->issue("alice", kActor);
    const auto challenge = f.challenges->login("alice", kActor);

    f.challenges->verify(challenge.id, ServiceFixture::answer(card, challenge), kActor);
    EXPECT_EQ(f.cards->list("alice").at(0).state, "active");
    EXPECT_EQ(refusal_of([&] {
                  f.challenges->verify(challenge.id, ServiceFixture::answer(card, challenge),
                                       kActor);
              }),
              Reason::gone);
}

TEST(Pincard_Verify, TwoSimultaneousRightAnswersAcceptOnceIn100Rounds) {
    ServiceFixture f;
    const auto card = f.cards->issue("alice", kActor);
    for (int round = 0; round < 100; ++round) {
        const auto challenge = f.challenges->login("alice", kActor);
        const auto response = ServiceFixture::answer(card, challenge);
        std::atomic<int> accepted{0};
        std::atomic<int> gone{0};
        std::vector<std::thread> threads;
        for (int i = 0; i < 2; ++i) {
            threads.emplace_back([&] {
                const auto refused =
                    refusal_of([&] { f.challenges->verify(challenge.id, response, kActor); });
                if (!refused) {
                    ++accepted;
                } else if (*refused == Reason::gone) {
                    ++gone;
                }
            });
        }
        for (auto& thread : threads) {
            thread.join();
        }
        ASSERT_EQ(accepted.load(), 1) << "round " << round;
        ASSERT_EQ(gone.load(), 1) << "round " << round;
    }
}

TEST(Pincard_Rotation, NewCardsUseTheNewestKeyAndOldCardsKeepTheirs) {
    ServiceFixture f;
    const auto old_card = f.cards->issue("alice", kActor);
    auto challenge = f.challenges->login("alice", kActor);
    f.challenges->verify(challenge.id, ServiceFixture::answer(old_card, challenge), kActor);

    // What the console's "hsm rotate card-kdk" makes.
    f.hsm->generate_secret_key(hsm::keys::versioned(hsm::keys::kCardKdk, 2),
                               hsm::KeyKind::hmac_sha256);
    const auto new_card = f.cards->issue("bob", kActor);
    auto row = f.database->prepare("SELECT key_version FROM pincards WHERE serial = ?");
    row.bind(1, new_card.serial);
    ASSERT_TRUE(row.step());
    EXPECT_EQ(row.integer(0), 2);
    const StoredCard as_v1{new_card.serial, "bob", "pending", 1, new_card.layout};
    EXPECT_NE(f.cards->cell_value(as_v1, "A1") + f.cards->cell_value(as_v1, "B1") +
                  f.cards->cell_value(as_v1, "C1"),
              new_card.grid[0][0] + new_card.grid[0][1] + new_card.grid[0][2])
        << "the new card is derived with version 2";

    // Both cards answer: each with the key it was issued under.
    challenge = f.challenges->login("alice", kActor);
    f.challenges->verify(challenge.id, ServiceFixture::answer(old_card, challenge), kActor);
    challenge = f.challenges->login("bob", kActor);
    f.challenges->verify(challenge.id, ServiceFixture::answer(new_card, challenge), kActor);
    EXPECT_EQ(f.cards->list("bob").at(0).state, "active");
}

TEST(Pincard_Verify, FirstUseOfANewCardReplacesTheActiveOne) {
    ServiceFixture f;
    const auto old_card = f.cards->issue("alice", kActor);
    auto challenge = f.challenges->login("alice", kActor);
    f.challenges->verify(challenge.id, ServiceFixture::answer(old_card, challenge), kActor);

    const auto new_card = f.cards->issue("alice", kActor);
    challenge = f.challenges->login("alice", kActor);
    // The old active card still works until the new one is used.
    f.challenges->verify(challenge.id, ServiceFixture::answer(old_card, challenge), kActor);
    challenge = f.challenges->login("alice", kActor);
    f.challenges->verify(challenge.id, ServiceFixture::answer(new_card, challenge), kActor);

    const auto cards = f.cards->list("alice");
    ASSERT_EQ(cards.size(), 2u);
    for (const auto& card : cards) {
        EXPECT_EQ(card.state, card.serial == new_card.serial ? "active" : "replaced");
    }
    challenge = f.challenges->login("alice", kActor);
    EXPECT_EQ(refusal_of([&] {
                  f.challenges->verify(challenge.id, ServiceFixture::answer(old_card, challenge),
                                       kActor);
              }),
              Reason::rejected);
}

TEST(Pincard_Verify, AnAnswerOpensOneChallengeNotAnotherWithTheSameCells) {
    ServiceFixture f;
    const auto card = f.cards->issue("alice", kActor);
    const auto waiting =
        f.challenges->login("alice", kActor);  // opened first, as an attacker would
    const auto own = f.challenges->login("alice", kActor);
    ASSERT_EQ(waiting.cells, own.cells);

    const auto answer = ServiceFixture::answer(card, own);
    f.challenges->verify(own.id, answer, kActor);
    EXPECT_EQ(refusal_of([&] { f.challenges->verify(waiting.id, answer, kActor); }), Reason::gone);
}

TEST(Pincard_Challenge, CellsStayUntilAnsweredWhateverHappensBetween) {
    ServiceFixture f;
    const auto card = f.cards->issue("alice", kActor);
    const auto first = f.challenges->login("alice", kActor);

    // Asking again, wrong answers, and a burned challenge keep the cells.
    f.clock.advance(10s);
    auto again = f.challenges->login("alice", kActor);
    EXPECT_EQ(again.cells, first.cells);
    for (int i = 0; i < 5; ++i) {
        (void)refusal_of([&] { f.challenges->verify(again.id, "000000", kActor); });
    }
    EXPECT_EQ(refusal_of([&] { f.challenges->verify(again.id, "000000", kActor); }), Reason::gone);
    f.clock.advance(280s);
    again = f.challenges->login("alice", kActor);
    EXPECT_EQ(again.cells, first.cells);
    EXPECT_EQ(again.expires_at, first.expires_at);

    // Answered correctly: the next login may ask other cells.
    f.challenges->verify(again.id, ServiceFixture::answer(card, again), kActor);
    std::set<std::vector<std::string>> seen;
    for (int i = 0; i < 4; ++i) {
        const auto next = f.challenges->login("alice", kActor);
        seen.insert(next.cells);
        f.challenges->verify(next.id, ServiceFixture::answer(card, next), kActor);
    }
    EXPECT_GT(seen.size(), 1u);
}

TEST(Pincard_Challenge, ExpiresAfterThreeHundredSeconds) {
    ServiceFixture f;
    const auto card = f.cards->issue("alice", kActor);
    const auto challenge = f.challenges->login("alice", kActor);
    f.clock.advance(301s);
    EXPECT_EQ(refusal_of([&] {
                  f.challenges->verify(challenge.id, ServiceFixture::answer(card, challenge),
                                       kActor);
              }),
              Reason::gone);
}

// Refused as gone before anything is compared: no card cell is worked out
// for it beforehand either.
TEST(Pincard_Challenge, AnAnswerAfterTheExpiryCostsNoCardCell) {
    ServiceFixture f;
    const auto card = f.cards->issue("alice", kActor);
    const auto challenge = f.challenges->login("alice", kActor);
    f.clock.advance(301s);
    const auto watched = f.send_right_answer_watching_the_card_key(card, challenge);
    EXPECT_EQ(watched.refusal, Reason::gone);
    EXPECT_FALSE(watched.card_cell_worked_out)
        << "a card cell was worked out for an expired challenge";
}

TEST(Pincard_Verify, FifthWrongAnswerBurnsTheChallenge) {
    ServiceFixture f;
    const auto card = f.cards->issue("alice", kActor);
    const auto challenge = f.challenges->login("alice", kActor);
    for (int left = 4; left >= 0; --left) {
        try {
            f.challenges->verify(challenge.id, "999999", kActor);
            FAIL() << "a wrong answer was accepted";
        } catch (const Refused& refused) {
            // 999999 may be right by chance on a random card; then this test
            // would be wrong, which happens once in a million.
            EXPECT_EQ(refused.reason(), Reason::rejected);
            EXPECT_EQ(refused.attempts_left, left);
        }
    }
    EXPECT_EQ(refusal_of([&] {
                  f.challenges->verify(challenge.id, ServiceFixture::answer(card, challenge),
                                       kActor);
              }),
              Reason::gone);
}

TEST(Pincard_Verify, MalformedResponseCountsAsWrong) {
    ServiceFixture f;
    (void)f.cards->issue("alice", kActor);
    const auto challenge = f.challenges->login("alice", kActor);
    try {
        f.challenges->verify(challenge.id, "12ab56", kActor);
        FAIL();
    } catch (const Refused& refused) {
        EXPECT_EQ(refused.reason(), Reason::invalid_response);
        EXPECT_EQ(refused.attempts_left, 4);
    }
    EXPECT_EQ(refusal_of([&] { f.challenges->verify(challenge.id, "12345", kActor); }),
              Reason::invalid_response);
}

TEST(Pincard_Lifecycle, BlockUnblockRevokeFollowTheStates) {
    ServiceFixture f;
    const auto card = f.cards->issue("alice", kActor);
    EXPECT_EQ(f.cards->block(card.serial, "lost", kActor), "blocked");
    EXPECT_EQ(refusal_of([&] { (void)f.cards->block(card.serial, "", kActor); }),
              Reason::invalid_state);
    EXPECT_EQ(f.cards->unblock(card.serial, kActor), "pending");
    EXPECT_EQ(refusal_of([&] { (void)f.cards->unblock(card.serial, kActor); }),
              Reason::invalid_state);
    EXPECT_EQ(f.cards->revoke(card.serial, kActor), "revoked");
    EXPECT_EQ(refusal_of([&] { (void)f.cards->revoke(card.serial, kActor); }),
              Reason::invalid_state);
    EXPECT_EQ(refusal_of([&] { (void)f.cards->block(card.serial, "", kActor); }),
              Reason::invalid_state);
    EXPECT_EQ(refusal_of([&] { (void)f.cards->block("NO-SUCH-CARD", "", kActor); }),
              Reason::unknown_card);
}

TEST(Pincard_Lifecycle, UnblockReturnsAnActiveCardToActive) {
    ServiceFixture f;
    const auto card = f.cards->issue("alice", kActor);
    const auto challenge = f.challenges->login("alice", kActor);
    f.challenges->verify(challenge.id, ServiceFixture::answer(card, challenge), kActor);
    EXPECT_EQ(f.cards->block(card.serial, "", kActor), "blocked");
    EXPECT_EQ(f.cards->unblock(card.serial, kActor), "active");
    try {
        (void)f.cards->unblock(card.serial, kActor);
        FAIL() << "an active card was unblocked";
    } catch (const Refused& refused) {
        EXPECT_EQ(refused.reason(), Reason::invalid_state);
        EXPECT_STREQ(refused.what(), "an active card cannot be unblocked");
    }
}

TEST(Pincard_Login, BlockedCardIsNotAskedAndNotAccepted) {
    ServiceFixture f;
    const auto card = f.cards->issue("alice", kActor);
    const auto challenge = f.challenges->login("alice", kActor);
    (void)f.cards->block(card.serial, "", kActor);
    EXPECT_EQ(refusal_of([&] {
                  f.challenges->verify(challenge.id, ServiceFixture::answer(card, challenge),
                                       kActor);
              }),
              Reason::rejected);
    try {
        (void)f.challenges->login("alice", kActor);
        FAIL() << "a login without a usable card or phone got a challenge";
    } catch (const Refused& refused) {
        EXPECT_EQ(refused.reason(), Reason::no_second_factor);
        EXPECT_EQ(refused.fallbacks, (std::vector<std::string>{"ti_connector", "order_pincard"}));
    }
}

// An answer's card cells are worked out in the HSM before its transaction,
// so that other requests can use the database meanwhile.
TEST(Pincard_Verify, CellsAreWorkedOutWithoutHoldingTheDatabase) {
    ServiceFixture f;
    const auto card = f.cards->issue("alice", kActor);
    const auto challenge = f.challenges->login("alice", kActor);
    std::optional<bool> free_meanwhile;
    f.stepped->arm(std::string(hsm::keys::kCardKdk), [&] {
        free_meanwhile =
            std::async(std::launch::async, [&] { return f.database->within(500ms, [] {}); }).get();
    });
    f.challenges->verify(challenge.id, ServiceFixture::answer(card, challenge), kActor);
    ASSERT_TRUE(free_meanwhile.has_value()) << "no card cell was worked out";
    EXPECT_TRUE(*free_meanwhile) << "the database was held while the HSM worked out the cells";
}

TEST(Pincard_Verify, ACardBlockedWhileTheAnswerIsWorkedOutDoesNotOpenIt) {
    ServiceFixture f;
    const auto card = f.cards->issue("alice", kActor);
    const auto challenge = f.challenges->login("alice", kActor);
    f.stepped->arm(std::string(hsm::keys::kCardKdk),
                   [&] { (void)f.cards->block(card.serial, "lost", kActor); });
    EXPECT_EQ(refusal_of([&] {
                  f.challenges->verify(challenge.id, ServiceFixture::answer(card, challenge),
                                       kActor);
              }),
              Reason::rejected);
    EXPECT_EQ(f.cards->list("alice").at(0).state, "blocked");
}

TEST(Pincard_Verify, ACardUnblockedWhileTheAnswerIsWorkedOutIsCheckedToo) {
    ServiceFixture f;
    const auto first = f.cards->issue("alice", kActor);
    const auto opening = f.challenges->login("alice", kActor);
    f.challenges->verify(opening.id, ServiceFixture::answer(first, opening), kActor);
    const auto second = f.cards->issue("alice", kActor);
    (void)f.cards->block(second.serial, "misplaced", kActor);

    // Answered with the second card, which was not usable when the values
    // were worked out but is when the transaction checks them.
    const auto challenge = f.challenges->login("alice", kActor);
    f.stepped->arm(std::string(hsm::keys::kCardKdk),
                   [&] { (void)f.cards->unblock(second.serial, kActor); });
    f.challenges->verify(challenge.id, ServiceFixture::answer(second, challenge), kActor);
    for (const auto& card : f.cards->list("alice")) {
        EXPECT_EQ(card.state, card.serial == second.serial ? "active" : "replaced") << card.serial;
    }
}

}  // namespace
}  // namespace otpbox::firmware
