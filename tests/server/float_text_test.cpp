// write_shortest_float / write_float_list against std::to_chars, the text they promise to match.
// The whole float32 range, all 2^31 magnitudes, is compared by AllFloatsMatchToChars when
// EMBD_FLOAT_TEXT_EXHAUSTIVE=1 (about 2 minutes on 2 cores; run it after any change to
// float_text.cpp); otherwise a sample of every exponent plus the boundaries runs in a second.
#include "server/float_text.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace embd::server {
namespace {

std::string reference_text(float value) {
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  EXPECT_EQ(ec, std::errc());
  return std::string(buffer, end);
}

std::string shortest_text(float value) {
  // Poison the room so that a write past the returned end cannot pass unseen as text.
  char buffer[kFloatTextRoom + 8];
  std::memset(buffer, '#', sizeof(buffer));
  char* end = write_shortest_float(value, buffer);
  EXPECT_LE(end - buffer, kMaxFloatText) << reference_text(value);
  return std::string(buffer, end);
}

float from_bits(std::uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

TEST(FloatText, BoundariesMatchToChars) {
  const float values[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.1f, 0.5f, 9.0f, 10.0f, 123.0f, 1e7f,
                          1.5e7f, 16777216.0f, 123456790.0f, 1e9f, 1e10f, 3.4028235e38f,
                          -3.4028235e38f, 1.17549435e-38f, 1.1754942e-38f, 1e-45f, -1e-45f,
                          0.001f, 0.0001f, 0.00012345f, 0.000012345f, 1e-5f, 0.123456789f,
                          1.2345678f, 12.345678f, 1234567.9f, 0.3f, 2.5e-3f, 1e38f,
                          std::numeric_limits<float>::denorm_min(),
                          std::numeric_limits<float>::min(), std::numeric_limits<float>::epsilon()};
  for (float value : values) EXPECT_EQ(shortest_text(value), reference_text(value)) << value;
}

TEST(FloatText, EveryExponentMatchesToChars) {
  std::mt19937 random(7);
  for (std::uint32_t exponent = 0; exponent < 255; ++exponent) {
    for (int i = 0; i < 4000; ++i) {
      const std::uint32_t bits = (random() & 0x807FFFFFu) | (exponent << 23);
      const float value = from_bits(bits);
      ASSERT_EQ(shortest_text(value), reference_text(value)) << std::hex << bits;
    }
  }
}

TEST(FloatText, EmbeddingLikeValuesMatchToChars) {
  std::mt19937 random(11);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  for (int i = 0; i < 200000; ++i) {
    const float value = normal(random);
    ASSERT_EQ(shortest_text(value), reference_text(value)) << value;
  }
}

TEST(FloatText, ListSeparatesWithCommasAndWritesNull) {
  // Lengths around the writer's blocks of 8.
  std::mt19937 random(3);
  std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
  for (std::size_t count : {0, 1, 7, 8, 9, 16, 17, 513}) {
    std::vector<float> values(count);
    for (auto& v : values) v = uniform(random);
    if (count > 3) {
      values[1] = std::numeric_limits<float>::quiet_NaN();
      values[2] = -std::numeric_limits<float>::infinity();
      values[3] = -0.0f;
    }
    std::string expected;
    for (std::size_t i = 0; i < count; ++i) {
      if (i) expected += ',';
      expected += std::isfinite(values[i]) ? reference_text(values[i]) : "null";
    }
    std::string buffer(float_list_room(count), '#');
    char* end = write_float_list(values, buffer.data());
    ASSERT_LE(end, buffer.data() + buffer.size());
    EXPECT_EQ(std::string(buffer.data(), end), expected) << count;
  }
}

TEST(FloatText, AllFloatsMatchToChars) {
  const char* enabled = std::getenv("EMBD_FLOAT_TEXT_EXHAUSTIVE");
  if (enabled == nullptr || std::string(enabled) != "1") {
    GTEST_SKIP() << "set EMBD_FLOAT_TEXT_EXHAUSTIVE=1 to compare all 2^31 magnitudes";
  }
  // Positive patterns only: the sign is one character in front (BoundariesMatchToChars and
  // EveryExponentMatchesToChars cover negative values). Infinity and NaN are not printed.
  constexpr std::uint64_t kEnd = 0x7F800000u;
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::atomic<std::uint64_t> mismatches{0}, first_bad{kEnd};
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      char expected[64], actual[kFloatTextRoom];
      for (std::uint64_t bits = t; bits < kEnd; bits += threads) {
        const float value = from_bits(static_cast<std::uint32_t>(bits));
        const auto reference = std::to_chars(expected, expected + sizeof(expected), value).ptr;
        const char* end = write_shortest_float(value, actual);
        const auto length = static_cast<std::size_t>(reference - expected);
        if (static_cast<std::size_t>(end - actual) != length || std::memcmp(actual, expected, length) != 0) {
          if (mismatches.fetch_add(1) == 0) first_bad.store(bits);
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  EXPECT_EQ(mismatches.load(), 0u) << "first mismatch: bits 0x" << std::hex << first_bad.load() << " ("
                                   << reference_text(from_bits(static_cast<std::uint32_t>(first_bad.load())))
                                   << " printed as "
                                   << shortest_text(from_bits(static_cast<std::uint32_t>(first_bad.load()))) << ")";
}

}  // namespace
}  // namespace embd::server
