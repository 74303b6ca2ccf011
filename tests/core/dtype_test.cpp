#include "core/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace embd {
namespace {

TEST(DType, ParseNamesAndRejectUnknown) {
  EXPECT_EQ(parse_dtype("f32").value(), DType::kF32);
  EXPECT_EQ(parse_dtype("float16").value(), DType::kF16);
  EXPECT_EQ(parse_dtype("bf16").value(), DType::kBF16);
  auto bad = parse_dtype("int8");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("int8"), std::string::npos);
}

// Every one of the 65536 half values widens exactly and narrows back to itself.
TEST(DType, F16RoundTripsEveryValue) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(static_cast<std::uint16_t>(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(f32_to_f16(f), h) << "half bits " << h;
  }
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
}

// Narrowing rounds to the nearest half (ties to even), checked against double arithmetic.
TEST(DType, F32ToF16RoundsToNearestEven) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> mag(-30.f, 15.f);  // below the overflow threshold
  for (int i = 0; i < 200000; ++i) {
    const float x = std::ldexp(1.0f + (rng() % 100000) / 100000.0f, static_cast<int>(mag(rng))) *
                    ((rng() & 1) ? 1.f : -1.f);
    const std::uint16_t h = f32_to_f16(x);
    const double got = f16_to_f32(h);
    // neighbours
    const double up = f16_to_f32(static_cast<std::uint16_t>(h + 1));
    const double down = (h & 0x7fff) ? f16_to_f32(static_cast<std::uint16_t>(h - 1)) : got;
    EXPECT_LE(std::abs(got - x), std::abs(up - x) + 1e-30) << x;
    EXPECT_LE(std::abs(got - x), std::abs(down - x) + 1e-30) << x;
  }
  EXPECT_EQ(f32_to_f16(1e6f), 0x7c00);     // overflow to inf
  EXPECT_EQ(f32_to_f16(1e-9f), 0x0000);    // underflow to zero
}

TEST(DType, BF16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  // 1 + 2^-8 is a tie between 1 and 1 + 2^-7: even mantissa (1.0) wins.
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(DType, BulkConvertMatchesScalarAtOddLengths) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 3.f);
  for (std::size_t n : {1u, 7u, 8u, 9u, 1023u, 1025u, 5000u}) {
    std::vector<float> src(n);
    for (auto& v : src) v = nd(rng);
    std::vector<std::uint16_t> h(n), b(n), hb(n);
    convert(src.data(), DType::kF32, h.data(), DType::kF16, n);
    convert(src.data(), DType::kF32, b.data(), DType::kBF16, n);
    convert(h.data(), DType::kF16, hb.data(), DType::kBF16, n);
    std::vector<float> back(n);
    convert(h.data(), DType::kF16, back.data(), DType::kF32, n);
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_EQ(h[i], f32_to_f16(src[i]));
      ASSERT_EQ(b[i], f32_to_bf16(src[i]));
      ASSERT_EQ(hb[i], f32_to_bf16(f16_to_f32(h[i])));
      ASSERT_EQ(back[i], f16_to_f32(h[i]));
    }
  }
}

}  // namespace
}  // namespace embd
