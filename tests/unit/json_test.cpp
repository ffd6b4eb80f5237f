#include "tidegate/proto/json.h"

#include <gtest/gtest.h>

namespace tidegate::proto::json {
namespace {

TEST(JsonQuote, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(quote("plain"), "\"plain\"");
  EXPECT_EQ(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(quote("l1\nl2\t\r"), "\"l1\\nl2\\t\\r\"");
  EXPECT_EQ(quote(std::string("\0\x01\x7f", 3)), "\"\\u0000\\u0001\\u007f\"");
}

TEST(JsonQuote, KeepsValidUtf8AndEscapesInvalidBytes) {
  EXPECT_EQ(quote("22 \xc2\xb0"
                  "C"),
            "\"22 \xc2\xb0"
            "C\"");                                              // degree sign
  EXPECT_EQ(quote("\xf0\x9f\x8c\xa1"), "\"\xf0\x9f\x8c\xa1\"");  // thermometer emoji
  EXPECT_EQ(quote("\xff\xfe"), "\"\\u00ff\\u00fe\"");
  EXPECT_EQ(quote("\xc0\xaf"), "\"\\u00c0\\u00af\"");             // overlong '/'
  EXPECT_EQ(quote("\xed\xa0\x80"), "\"\\u00ed\\u00a0\\u0080\"");  // surrogate
  EXPECT_EQ(quote("\xe2\x82"), "\"\\u00e2\\u0082\"");             // truncated
}

TEST(JsonQuote, AppendsAfterWhatIsThereWithRunsAndEscapesMixed) {
  std::string out = "{\"k\":";
  append_quoted(out, "ab\"cd\\ef\x01gh \xc2\xb0 \xff!");
  EXPECT_EQ(out, "{\"k\":\"ab\\\"cd\\\\ef\\u0001gh \xc2\xb0 \\u00ff!\"");
}

TEST(JsonUtf8, Validation) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("{\"t\":21.5}"));
  EXPECT_TRUE(is_valid_utf8("\xe2\x82\xac"));
  EXPECT_FALSE(is_valid_utf8("\x80"));
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
}

TEST(JsonBase64, MatchesRfc4648TestVectors) {
  // RFC 4648 section 10.
  EXPECT_EQ(base64(""), "");
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
  EXPECT_EQ(base64("foob"), "Zm9vYg==");
  EXPECT_EQ(base64("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64(std::string("\0\xff", 2)), "AP8=");
}

}  // namespace
}  // namespace tidegate::proto::json
