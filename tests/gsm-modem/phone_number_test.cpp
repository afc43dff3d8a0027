#include "otpbox/gsm/phone_number.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace otpbox::gsm {
namespace {

TEST(PhoneNumber_Normalize, GermanNationalFormsGiveE164) {
    for (const char* input : {"0170 1234567", "(0170) 123-4567", "0170-1234567", "01701234567",
                              "0049 170 1234567", "+49 170/123 45 67", "+49 (0)170 1234567",
                              "0049 (0)170 1234567", "0049(0)1701234567", "+491701234567"}) {
        EXPECT_EQ(normalize_number(input), "+491701234567") << input;
    }
}

// Spaces that keep a number on one line, as a number copied from a web page
// or a letter has them; any other character outside ASCII is still refused.
TEST(PhoneNumber_Normalize, NoBreakSpacesSeparateLikeSpaces) {
    EXPECT_EQ(normalize_number("0170\u00a01234567"), "+491701234567");
    EXPECT_EQ(normalize_number("+49\u202f170\u00a0123\u00a045\u00a067"), "+491701234567");
    EXPECT_EQ(normalize_number("0170\u20031234567"), std::nullopt);  // an em space
    EXPECT_EQ(normalize_number("0170\xc2"
                               "1234567"),
              std::nullopt);  // half of one
}

TEST(PhoneNumber_Normalize, NationalFormTakesTheDefaultCountry) {
    EXPECT_EQ(normalize_number("0612 3456789", "43"), "+436123456789");
    EXPECT_EQ(normalize_number("+33 6 12 34 56 78", "49"), "+33612345678");
    EXPECT_EQ(normalize_number("+1 (202) 555-0143"), "+12025550143");
}

TEST(PhoneNumber_Normalize, RefusesWhatIsNoPhoneNumber) {
    for (const char* input :
         {"", "   ", "abc", "0170 12345x7", "+49", "0049", "+", "0", "+49 0170 1234567",
          "1701234567", "+49 123", "0170 12", "++491701234567", "49+1701234567", "0000 1234567",
          "+0 1701234567", "1234567890123456789012345678901234567890", "+4917012345678901234"}) {
        EXPECT_EQ(normalize_number(input), std::nullopt) << '"' << input << '"';
    }
}

// A number that ends inside its country code was once cut past its end,
// which threw instead of refusing (the API answered 500, the console "Failed").
TEST(PhoneNumber_Normalize, RefusesANumberShorterThanItsCountryCode) {
    for (const char* input : {"+4", "+42", "0042", "004", "+35", "+1", "+7", "+49"}) {
        EXPECT_NO_THROW(EXPECT_EQ(normalize_number(input), std::nullopt) << '"' << input << '"');
    }
}

TEST(PhoneNumber_Normalize, FifteenDigitsIsTheE164Limit) {
    EXPECT_EQ(normalize_number("+491701234567890"), "+491701234567890");
    EXPECT_EQ(normalize_number("+4917012345678901"), std::nullopt);
}

TEST(PhoneNumber_CountryAllowed, MatchesListedPrefixesOnly) {
    const std::vector<std::string> prefixes = {"+49", "+43"};
    EXPECT_TRUE(country_allowed("+491701234567", prefixes));
    EXPECT_TRUE(country_allowed("+436123456789", prefixes));
    EXPECT_FALSE(country_allowed("+33612345678", prefixes));
    EXPECT_FALSE(country_allowed("+491701234567", std::vector<std::string>{}));
    EXPECT_FALSE(country_allowed("+491701234567", std::vector<std::string>{""}));
}

TEST(PhoneNumber_Mask, ShowsCountryHeadAndTailOnly) {
    EXPECT_EQ(mask_number("+491701234567"), "+49 170 ****567");
    EXPECT_EQ(mask_number("+12025550143"), "+1 202 ****143");
    EXPECT_EQ(mask_number("+35312345678"), "+353 123 **678");
    EXPECT_EQ(mask_number("+4915112345678"), "+49 151 *****678");
}

TEST(PhoneNumber_Mask, NeverShowsAShortNumberWhole) {
    EXPECT_EQ(mask_number("+491234567"), "+49 *******");
    EXPECT_EQ(mask_number("+49"), "+49 ");
    EXPECT_EQ(mask_number(""), "+ ");
}

}  // namespace
}  // namespace otpbox::gsm
