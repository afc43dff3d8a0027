#include <gtest/gtest.h>

#include "../../firmware/src/json_keys.hpp"

namespace {

using otpbox::firmware::detail::has_duplicate_keys;

TEST(JsonKeys, ARepeatedKeyIsFoundAtAnyDepth) {
    EXPECT_TRUE(has_duplicate_keys(R"({"a":1,"a":2})"));
    EXPECT_TRUE(has_duplicate_keys(R"({"x":{"a":1,"b":{"c":[{"d":1,"d":1}]}}})"));
    // Keys are compared as decoded: an escape names the same key.
    EXPECT_TRUE(has_duplicate_keys(R"({"ab":1,"\u0061b":2})"));
}

TEST(JsonKeys, TheSameKeyInDifferentObjectsIsNoRepeat) {
    EXPECT_FALSE(has_duplicate_keys(R"({"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]})"));
    EXPECT_FALSE(has_duplicate_keys(R"({"a":"a","b":"a"})"));
    EXPECT_FALSE(has_duplicate_keys(R"([{"a":1},{"a":1}])"));
    EXPECT_FALSE(has_duplicate_keys("{}"));
}

TEST(JsonKeys, TextThatIsNotJsonIsLeftToTheParse) {
    EXPECT_FALSE(has_duplicate_keys("{"));
    EXPECT_FALSE(has_duplicate_keys(""));
    EXPECT_FALSE(has_duplicate_keys(R"({"a":1,"b":)"));
}

}  // namespace
