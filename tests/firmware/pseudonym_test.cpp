// A user's pseudonym is made once in the HSM and then kept in memory: the
// kept name must be the one the HSM makes, for every user, also after the
// store of kept names has been started afresh.

#include <gtest/gtest.h>

#include <string>

#include "service_fixture.hpp"

namespace otpbox::firmware {
namespace {

using testing::ServiceFixture;

TEST(Pseudonym, KeptNamesAreTheOnesTheHsmMakes) {
    ServiceFixture f;
    const auto alice = f.secrets->pseudonym("alice");
    const auto bob = f.secrets->pseudonym("bob");
    EXPECT_NE(alice, bob);
    EXPECT_EQ(alice.size(), 18u);
    EXPECT_EQ(alice.substr(0, 2), "u-");

    // Asked again, from the kept names; a second Secrets has none kept and
    // asks the HSM.
    Secrets fresh(f.hsm);
    EXPECT_EQ(f.secrets->pseudonym("alice"), alice);
    EXPECT_EQ(fresh.pseudonym("alice"), alice);
    EXPECT_EQ(fresh.pseudonym("bob"), bob);
}

TEST(Pseudonym, NamesStayTheSamePastTheBoundOfKeptNames) {
    ServiceFixture f;
    const auto first = f.secrets->pseudonym("user-0");
    for (std::size_t i = 1; i <= Secrets::kKeptPseudonyms; ++i) {
        (void)f.secrets->pseudonym("user-" + std::to_string(i));
    }
    // The bound was passed once: the kept names were dropped and user-0's
    // name is made again.
    EXPECT_EQ(f.secrets->pseudonym("user-0"), first);
    EXPECT_EQ(f.secrets->pseudonym("user-" + std::to_string(Secrets::kKeptPseudonyms)),
              Secrets(f.hsm).pseudonym("user-" + std::to_string(Secrets::kKeptPseudonyms)));
}

}  // namespace
}  // namespace otpbox::firmware
