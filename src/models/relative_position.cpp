#include "models/relative_position.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace embd::models {

int relative_position_bucket(std::int64_t relative_position) {
  constexpr int kHalf = kRelativeBuckets / 2;  // buckets per side
  constexpr int kExact = kHalf / 2;            // distances below this have a bucket each
  const std::int64_t n = -relative_position;
  const int side = n < 0 ? kHalf : 0;
  const std::int64_t distance = std::llabs(n);
  if (distance < kExact) return side + static_cast<int>(distance);
  // In float32 as torch computes it (the quotient by a float32 log of 128 / 8), so that a
  // distance on a bucket boundary (16, 32, 64) lands where transformers puts it.
  const float log_ratio = std::log(static_cast<float>(distance) / static_cast<float>(kExact)) /
                          static_cast<float>(std::log(static_cast<double>(kRelativeMaxDistance) / kExact));
  const auto large = static_cast<std::int64_t>(log_ratio * static_cast<float>(kHalf - kExact));
  return side + static_cast<int>(std::min<std::int64_t>(kExact + large, kHalf - 1));
}

std::vector<float> relative_bias_table(const std::vector<float>& weight, int heads) {
  constexpr int kReach = kRelativeMaxDistance;
  constexpr int kWidth = 2 * kReach + 1;
  std::vector<float> table(static_cast<std::size_t>(heads) * kWidth);
  for (int r = -kReach; r <= kReach; ++r) {
    const int bucket = relative_position_bucket(r);
    for (int h = 0; h < heads; ++h) {
      table[static_cast<std::size_t>(h) * kWidth + kReach + r] = weight[static_cast<std::size_t>(bucket) * heads + h];
    }
  }
  return table;
}

}  // namespace embd::models
