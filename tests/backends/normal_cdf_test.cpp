// The fused gated GEMM's GELU uses normal_cdf_fast() (src/backends/cuda/normal_cdf.h) for Phi(x):
// checked here against the double erfc on the host, over every region the polynomial and its
// clamp cover.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "backends/cuda/normal_cdf.h"

namespace {

using embd::backend::cuda::normal_cdf_fast;

double phi(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

TEST(NormalCdf, WithinOneMillionthEverywhere) {
  double worst = 0, at = 0;
  for (int i = -140000; i <= 140000; ++i) {  // [-14, 14] in steps of 1e-4: both tails and the clamp
    const float x = static_cast<float>(i) * 1e-4f;
    const double err = std::abs(normal_cdf_fast(x) - phi(x));
    if (err > worst) worst = err, at = x;
  }
  EXPECT_LT(worst, 1e-6) << "at x = " << at;
}

TEST(NormalCdf, GeluKeepsItsRelativeAccuracyInTheNegativeTail) {
  // x * Phi(x) for x < 0 is small: its error is relative to Phi(-|x|) there.
  for (float x = -5.0f; x <= -0.5f; x += 0.001f) {
    const double want = phi(x);
    EXPECT_NEAR(normal_cdf_fast(x) / want, 1.0, 2e-5) << "x = " << x;
  }
}

TEST(NormalCdf, ExtremesAndNaN) {
  EXPECT_NEAR(normal_cdf_fast(std::numeric_limits<float>::infinity()), 1.0f, 1e-7f);
  EXPECT_NEAR(normal_cdf_fast(-std::numeric_limits<float>::infinity()), 0.0f, 1e-7f);
  EXPECT_NEAR(normal_cdf_fast(0.0f), 0.5f, 1e-6f);
  EXPECT_NEAR(normal_cdf_fast(-0.0f), 0.5f, 1e-6f);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(nan * normal_cdf_fast(nan)));
}

}  // namespace
