// l2_normalize_rows against a float64 reference, at widths around its eight-lane blocks.
#include "runtime/postprocess.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace embd::runtime {
namespace {

TEST(Postprocess, NormalizesEveryRowToUnitLength) {
  std::mt19937 random(3);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  for (std::size_t dim : {1, 7, 8, 9, 64, 511, 512, 513}) {
    const std::size_t rows = 5;
    std::vector<float> data(rows * dim);
    for (auto& v : data) v = normal(random);
    const std::vector<float> original = data;
    l2_normalize_rows(data, rows, dim);
    for (std::size_t r = 0; r < rows; ++r) {
      double norm = 0;
      for (std::size_t k = 0; k < dim; ++k) norm += double(original[r * dim + k]) * original[r * dim + k];
      norm = std::sqrt(norm);
      for (std::size_t k = 0; k < dim; ++k) {
        const double want = original[r * dim + k] / norm;
        EXPECT_NEAR(data[r * dim + k], want, 1e-7 * std::max(1.0, std::fabs(want))) << dim << " " << r << " " << k;
      }
    }
  }
}

TEST(Postprocess, ZeroRowStaysZero) {
  std::vector<float> data(9 * 2, 0.0f);
  data[9] = 3.0f;
  data[10] = 4.0f;
  l2_normalize_rows(data, 2, 9);
  for (std::size_t k = 0; k < 9; ++k) EXPECT_EQ(data[k], 0.0f);
  EXPECT_FLOAT_EQ(data[9], 0.6f);
  EXPECT_FLOAT_EQ(data[10], 0.8f);
}

}  // namespace
}  // namespace embd::runtime
