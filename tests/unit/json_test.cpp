#include "json/json.h"

#include <gtest/gtest.h>

namespace peerstack::json {
namespace {

TEST(CanonicalJson, SortsKeysByBytesAtEveryLevel) {
  const Value v = Object{{"b", 1}, {"a", Object{{"z", true}, {"A", nullptr}}}, {"B", "x"}};
  EXPECT_EQ(*Canonical(v), R"({"B":"x","a":{"A":null,"z":true},"b":1})");
}

TEST(CanonicalJson, EscapesMinimally) {
  const Value v = std::string("q\" b\\ n\n t\t c\x01 / \xc3\xa9");
  EXPECT_EQ(*Canonical(v), "\"q\\\" b\\\\ n\\n t\\t c\\u0001 / \xc3\xa9\"");
}

TEST(CanonicalJson, RefusesFloatingPoint) {
  EXPECT_EQ(Canonical(Object{{"x", 1.5}}).status().code(), "not_canonical");
  EXPECT_EQ(Serialize(Object{{"x", 1.5}}), R"({"x":1.5})");
}

TEST(CanonicalJson, RoundTripsThroughSimdjson) {
  const std::string inputs[] = {
      R"({"a":[1,-2,9223372036854775807,"s",null,false,{"k":"v"}],"b":{}})",
      R"("\u00e9\n")",
      R"([])",
  };
  for (const std::string& in : inputs) {
    auto v = Parse(in);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    auto again = Parse(Serialize(*v));
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*v, *again);
  }
  EXPECT_EQ(Serialize(*Parse(R"( { "b" : 1 , "a" : [ 2 ] } )")), R"({"a":[2],"b":1})");
  EXPECT_EQ(Parse(R"("\u00e9")")->as_string(), "\xc3\xa9");
}

// Found by tests/fuzz/json_fuzz.cpp: -0.0 serialized as "-0" (read back as the integer 0),
// and -5.187440506262845e19 as "-51874405062628450304", which Parse refuses (beyond int64).
TEST(CanonicalJson, DoublesReadBackAsDoubles) {
  for (const double d : {-0.0, 1.0, -5.187440506262845e19, 1e300, 0.1}) {
    const std::string text = Serialize(Value(d));
    auto again = Parse(text);
    ASSERT_TRUE(again.ok()) << text << ": " << again.status().ToString();
    ASSERT_TRUE(again->is_double()) << text;
    EXPECT_EQ(Serialize(*again), text);
  }
  EXPECT_EQ(Serialize(Value(-0.0)), "-0.0");
  EXPECT_EQ(Serialize(Value(1.0)), "1.0");
  EXPECT_EQ(Serialize(Value(1)), "1");
}

TEST(JsonParse, RefusesDuplicateKeys) {
  auto v = Parse(R"({"a":1,"a":2})");
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("duplicate key"), std::string::npos);
  EXPECT_FALSE(Parse(R"({"x":{"a":1,"a":1}})").ok());
}

TEST(JsonParse, RefusesTrailingContent) {
  EXPECT_FALSE(Parse("{} x").ok());
  EXPECT_FALSE(Parse("{}{}").ok());
  EXPECT_FALSE(Parse("1 2").ok());
  EXPECT_TRUE(Parse("{}  \n").ok());
}

TEST(JsonParse, RefusesMalformedInput) {
  for (const char* bad : {"", "{", "{\"a\":}", "[1,]", "\"\\x\"", "nul", "{'a':1}", "\"\xff\""}) {
    auto v = Parse(bad);
    EXPECT_FALSE(v.ok()) << bad;
    if (!v.ok()) {
      EXPECT_EQ(v.status().code(), "bad_json");
    }
  }
}

TEST(JsonParse, EnforcesDepthAndSizeLimits) {
  std::string deep(100, '[');
  deep += std::string(100, ']');
  EXPECT_FALSE(Parse(deep, {1 << 20, 64}).ok());
  EXPECT_TRUE(Parse(deep, {1 << 20, 128}).ok());
  EXPECT_FALSE(Parse(std::string(2000, ' ') + "1", {1000, 8}).ok());
}

TEST(JsonParse, RefusesIntegersBeyondInt64) {
  EXPECT_FALSE(Parse("18446744073709551615").ok());
  EXPECT_EQ(Parse("-9223372036854775808")->as_int(), INT64_MIN);
}

TEST(JsonValue, TypedLookups) {
  const Value v = *Parse(R"({"s":"x","i":3,"o":{}})");
  EXPECT_EQ(*v.find_string("s"), "x");
  EXPECT_EQ(*v.find_int("i"), 3);
  EXPECT_EQ(v.find_string("i"), nullptr);
  EXPECT_EQ(v.find("missing"), nullptr);
  EXPECT_TRUE(v.find("o")->is_object());
}

}  // namespace
}  // namespace peerstack::json
