#include <cmath>

#include "ops/ops.h"

namespace embd::ops {

std::vector<float> alibi_slopes(int num_heads) {
  std::vector<float> slopes;
  if (num_heads <= 0) return slopes;
  int p = 1;
  while (p * 2 <= num_heads) p *= 2;
  for (int h = 0; h < p; ++h) slopes.push_back(static_cast<float>(std::exp2(-8.0 * (h + 1) / p)));
  for (int k = 0; static_cast<int>(slopes.size()) < num_heads; ++k) {
    slopes.push_back(static_cast<float>(std::exp2(-8.0 * (2 * k + 1) / (2.0 * p))));
  }
  return slopes;
}

}  // namespace embd::ops
