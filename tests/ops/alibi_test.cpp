#include <gtest/gtest.h>

#include <cmath>

#include "ops/ops.h"

namespace embd::ops {
namespace {

TEST(AlibiSlopes, PowerOfTwoHeads) {
  const auto s = alibi_slopes(8);  // jina-embeddings-v2-small-en
  ASSERT_EQ(s.size(), 8u);
  for (int h = 0; h < 8; ++h) EXPECT_FLOAT_EQ(s[h], std::ldexp(1.0f, -(h + 1)));
}

// JINABERT.md §4.1: 12 heads = 2^-1..2^-8, then 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5.
TEST(AlibiSlopes, TwelveHeadsAreNotMonotone) {
  const auto s = alibi_slopes(12);
  ASSERT_EQ(s.size(), 12u);
  for (int h = 0; h < 8; ++h) EXPECT_FLOAT_EQ(s[h], std::ldexp(1.0f, -(h + 1)));
  const float tail[] = {0.70710678f, 0.35355339f, 0.1767767f, 0.08838835f};
  for (int k = 0; k < 4; ++k) EXPECT_NEAR(s[8 + k], tail[k], 1e-7);
}

// The fixture tiny-jina-6h: 1/4, 1/16, 1/64, 1/256, 1/2, 1/8.
TEST(AlibiSlopes, SixHeads) {
  const auto s = alibi_slopes(6);
  const float want[] = {0.25f, 1.0f / 16, 1.0f / 64, 1.0f / 256, 0.5f, 0.125f};
  ASSERT_EQ(s.size(), 6u);
  for (int h = 0; h < 6; ++h) EXPECT_FLOAT_EQ(s[h], want[h]);
}

// ggml's closed form (max_bias 8) for every head count 1..64.
TEST(AlibiSlopes, MatchClosedFormForAnyHeadCount) {
  for (int n = 1; n <= 64; ++n) {
    const auto s = alibi_slopes(n);
    ASSERT_EQ(static_cast<int>(s.size()), n);
    const int p = 1 << static_cast<int>(std::floor(std::log2(n)));
    const double m0 = std::pow(2.0, -8.0 / p), m1 = std::pow(2.0, -4.0 / p);
    for (int h = 0; h < n; ++h) {
      const double want = h < p ? std::pow(m0, h + 1) : std::pow(m1, 2 * (h - p) + 1);
      EXPECT_NEAR(s[h], want, 1e-7 * want) << n << " heads, head " << h;
    }
  }
}

}  // namespace
}  // namespace embd::ops
