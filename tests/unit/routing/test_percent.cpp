#include <gtest/gtest.h>

#include <string>

#include "routing/percent.hpp"

namespace spoa::routing {
namespace {

std::string decode(std::string_view in, std::size_t cap = 768) {
  std::string out(cap, '\0');
  const std::size_t n = percent_decode(in, out.data(), cap);
  if (n == npos_decoded) return "<overflow>";
  out.resize(n);
  return out;
}

TEST(PercentDecode, DecodesUpperAndLowerHex) {
  EXPECT_EQ(decode("%21abc%3Aexample.org"), "!abc:example.org");
  EXPECT_EQ(decode("%21abc%3aexample.org"), "!abc:example.org");
  EXPECT_EQ(decode("!abc%3Aexample.org"), "!abc:example.org");
  EXPECT_EQ(decode("%21abc:example.org"), "!abc:example.org");
  EXPECT_EQ(decode("!abc:example.org"), "!abc:example.org");
}

TEST(PercentDecode, EncodedSlashStaysInsideTheId) {
  EXPECT_EQ(decode("%21test%2Fv6%3Amaunium.net"), "!test/v6:maunium.net");
  EXPECT_EQ(decode("%2f"), "/");
}

TEST(PercentDecode, MalformedEscapesAreKeptLiterally) {
  EXPECT_EQ(decode("%4"), "%4");
  EXPECT_EQ(decode("%zz"), "%zz");
  EXPECT_EQ(decode("%4g"), "%4g");
  EXPECT_EQ(decode("a%"), "a%");
  EXPECT_EQ(decode("%"), "%");
  EXPECT_EQ(decode("%%21"), "%!");
  EXPECT_EQ(decode("%2"), "%2");
}

TEST(PercentDecode, DecodesNonAsciiBytesVerbatim) {
  EXPECT_EQ(decode("%F0%9F%90%88"), "\xF0\x9F\x90\x88");
  EXPECT_EQ(decode("%00"), std::string(1, '\0'));
}

TEST(PercentDecode, CapacityIsExactAndOverflowIsReported) {
  EXPECT_EQ(decode("abcd", 4), "abcd");
  EXPECT_EQ(decode("abcde", 4), "<overflow>");
  EXPECT_EQ(decode("%21%21%21%21", 4), "!!!!");  // 12 raw bytes, 4 decoded: fits
  EXPECT_EQ(decode("%21%21%21%21%21", 4), "<overflow>");
  EXPECT_EQ(decode("", 0), "");
}

TEST(PercentDecode, FirstDecodedChar) {
  EXPECT_EQ(decoded_first_char("!abc"), '!');
  EXPECT_EQ(decoded_first_char("%21abc"), '!');
  EXPECT_EQ(decoded_first_char("%23a%3Ab"), '#');
  EXPECT_EQ(decoded_first_char("%40a"), '@');
  EXPECT_EQ(decoded_first_char("%24ev"), '$');
  EXPECT_EQ(decoded_first_char("%2"), '%');
  EXPECT_EQ(decoded_first_char("%zz"), '%');
  EXPECT_EQ(decoded_first_char(""), '\0');
}

}  // namespace
}  // namespace spoa::routing
