// The audit chain: every row MACed in the HSM over itself and the row
// before; changes, gaps, reordering and truncation are found.

#include "otpbox/firmware/audit_log.hpp"

#include <gtest/gtest.h>

#include "service_fixture.hpp"

namespace otpbox::firmware {
namespace {

using testing::kActor;
using testing::ServiceFixture;

class AuditChain : public ::testing::Test {
  protected:
    AuditChain() {
        (void)f.phones->register_number("alice", "0170 1234567", kActor);
        (void)f.cards->issue("alice", kActor);
        (void)f.cards->issue("bob", kActor);
        (void)f.challenges->login("alice", kActor);
        anchor = f.audit->latest();
    }

    void sql(const std::string& statement) { f.database->execute(statement); }

    ServiceFixture f;
    AuditAnchor anchor;
};

TEST_F(AuditChain, IntactChainVerifiesUpToTheAnchor) {
    EXPECT_EQ(anchor.sequence, 4);
    const auto verdict = f.audit->verify(anchor);
    EXPECT_TRUE(verdict.intact) << verdict.problem;
    EXPECT_EQ(verdict.rows, 4);
}

TEST_F(AuditChain, RowsNeverHoldTheNumberOrTheUserId) {
    const auto text = otpbox::test::read_file(f.config.database);
    EXPECT_EQ(text.find("1701234567"), std::string::npos);
    auto rows = f.database->prepare("SELECT subject FROM audit");
    while (rows.step()) {
        EXPECT_EQ(rows.text(0).find("alice"), std::string::npos) << rows.text(0);
    }
}

TEST_F(AuditChain, ChangedRowIsFound) {
    sql("UPDATE audit SET outcome = 'rejected' WHERE seq = 2");
    const auto verdict = f.audit->verify(anchor);
    EXPECT_FALSE(verdict.intact);
    EXPECT_NE(verdict.problem.find("row 2"), std::string::npos) << verdict.problem;
}

TEST_F(AuditChain, DeletedRowInTheMiddleIsFound) {
    sql("DELETE FROM audit WHERE seq = 3");
    const auto verdict = f.audit->verify(anchor);
    EXPECT_FALSE(verdict.intact);
    EXPECT_NE(verdict.problem.find("missing"), std::string::npos) << verdict.problem;
}

TEST_F(AuditChain, ReorderedRowsAreFound) {
    sql("UPDATE audit SET seq = 100 WHERE seq = 2");
    sql("UPDATE audit SET seq = 2 WHERE seq = 3");
    sql("UPDATE audit SET seq = 3 WHERE seq = 100");
    EXPECT_FALSE(f.audit->verify(anchor).intact);
}

TEST_F(AuditChain, RowsDeletedAtTheEndAreFoundOnlyWithTheAnchor) {
    sql("DELETE FROM audit WHERE seq >= 3");
    // The rows left still chain: without the anchor nothing shows.
    EXPECT_TRUE(f.audit->verify().intact);
    const auto verdict = f.audit->verify(anchor);
    EXPECT_FALSE(verdict.intact);
    EXPECT_NE(verdict.problem.find("anchor"), std::string::npos) << verdict.problem;
}

TEST_F(AuditChain, AnchorFileRoundTrips) {
    const auto file = f.dir.path() / "audit.anchor";
    write_anchor(file, anchor);
    const auto read = read_anchor(file);
    ASSERT_TRUE(read);
    EXPECT_EQ(read->sequence, anchor.sequence);
    EXPECT_EQ(read->mac_hex, anchor.mac_hex);
    EXPECT_FALSE(read_anchor(f.dir.path() / "absent"));
}

TEST_F(AuditChain, AnAnchorFileIsMissingGarbledOrAnAnchor) {
    const auto file = f.dir.path() / "audit.anchor";
    EXPECT_EQ(load_anchor_file(file).state, AnchorFile::State::missing);
    for (const std::string text : {"nonsense\n", "12\n", "12 zz\n", "12 ab extra\n", "-1 ab\n"}) {
        test::write_file(file, text);
        const auto found = load_anchor_file(file);
        EXPECT_EQ(found.state, AnchorFile::State::unreadable) << text;
        EXPECT_FALSE(found.problem.empty()) << text;
        EXPECT_FALSE(read_anchor(file)) << text;
    }
    EXPECT_EQ(load_anchor_file(f.dir.path()).state, AnchorFile::State::unreadable);
    write_anchor(file, AuditAnchor{});
    EXPECT_EQ(load_anchor_file(file).state, AnchorFile::State::ok);
    write_anchor(file, anchor);
    const auto found = load_anchor_file(file);
    ASSERT_EQ(found.state, AnchorFile::State::ok);
    EXPECT_EQ(found.anchor.mac_hex, anchor.mac_hex);
}

TEST_F(AuditChain, TheLogFollowsFromAnEarlierAnchorUntilRowsAreCutOrChanged) {
    (void)f.cards->issue("carol", kActor);
    (void)f.cards->issue("dave", kActor);
    const auto now = f.audit->latest();
    ASSERT_GT(now.sequence, anchor.sequence + 1);
    EXPECT_EQ(f.audit->follows_from(anchor, now), "");
    EXPECT_EQ(f.audit->follows_from(AuditAnchor{}, now), "");

    auto changed = anchor;
    changed.mac_hex[0] = changed.mac_hex[0] == '0' ? '1' : '0';
    EXPECT_NE(f.audit->follows_from(changed, now).find("does not match"), std::string::npos);

    sql("DELETE FROM audit WHERE seq = " + std::to_string(now.sequence - 1));
    EXPECT_NE(f.audit->follows_from(anchor, f.audit->latest()).find("missing"), std::string::npos);

    sql("DELETE FROM audit WHERE seq > 2");
    const auto cut = f.audit->latest();
    EXPECT_EQ(cut.sequence, 2);
    EXPECT_NE(f.audit->follows_from(anchor, cut).find("are missing"), std::string::npos);
}

}  // namespace
}  // namespace otpbox::firmware
