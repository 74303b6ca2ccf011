// MPNet's relative-position buckets against transformers' own (goldens/mpnet-buckets.json,
// written by make_mpnet_model.py with torch's float32 logarithm), and the per-distance table the
// attention kernels read.
#include "models/relative_position.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/golden.h"

namespace embd::models {
namespace {

TEST(RelativePosition, BucketsMatchTransformersFromMinus1000To1000) {
  std::ifstream in(testing::fixtures_dir() + "/goldens/mpnet-buckets.json");
  ASSERT_TRUE(in) << "goldens/mpnet-buckets.json";
  const auto golden = nlohmann::json::parse(in);
  const std::int64_t first = golden.at("first_relative_position").get<std::int64_t>();
  const auto& buckets = golden.at("buckets");
  ASSERT_EQ(buckets.size(), 2001u);
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    const std::int64_t r = first + static_cast<std::int64_t>(i);
    EXPECT_EQ(relative_position_bucket(r), buckets[i].get<int>()) << "j - i = " << r;
  }
  // Far beyond the golden range the ends hold.
  EXPECT_EQ(relative_position_bucket(-100000), 15);
  EXPECT_EQ(relative_position_bucket(100000), 31);
}

TEST(RelativePosition, TableIsLaidOutByDistanceAndHead) {
  const int heads = 3;
  std::vector<float> weight(kRelativeBuckets * heads);
  for (std::size_t i = 0; i < weight.size(); ++i) weight[i] = static_cast<float>(i);  // bucket * heads + h
  const std::vector<float> table = relative_bias_table(weight, heads);
  constexpr int kReach = kRelativeMaxDistance;
  ASSERT_EQ(table.size(), static_cast<std::size_t>(heads * (2 * kReach + 1)));
  for (int h = 0; h < heads; ++h) {
    for (int r = -kReach; r <= kReach; ++r) {
      EXPECT_EQ(table[h * (2 * kReach + 1) + kReach + r], relative_position_bucket(r) * heads + h)
          << "head " << h << " j - i = " << r;
    }
  }
  // The ends are the buckets of every farther distance, so clamping to them is exact.
  EXPECT_EQ(relative_position_bucket(-kReach), relative_position_bucket(-kReach - 1000));
  EXPECT_EQ(relative_position_bucket(kReach), relative_position_bucket(kReach + 1000));
}

}  // namespace
}  // namespace embd::models
