// The fused gated projection's weight layout (gated_gemm_launch.h), checked on the host: the
// kernel reads 256-row blocks of the stored weight as 128 activated rows, then the 128 rows of the
// other half that multiply them. Its arithmetic is covered by BackendOpTest.GatedLinear on a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "backends/cuda/gated_gemm_launch.h"

namespace embd::backend::cuda {
namespace {

TEST(GatedLayout, InterleavesActivatedAndOtherHalvesInBlocks) {
  for (const long long inner : {128LL, 384LL, 2048LL}) {
    for (const bool first : {true, false}) {
      SCOPED_TRACE("inner=" + std::to_string(inner) + (first ? " first" : " second"));
      std::vector<std::int64_t> dst(static_cast<std::size_t>(2 * inner), -1);
      interleave_gated_rows(inner, first, dst.data());
      // A permutation of the rows.
      std::vector<std::int64_t> sorted = dst;
      std::sort(sorted.begin(), sorted.end());
      for (std::size_t i = 0; i < sorted.size(); ++i) ASSERT_EQ(sorted[i], static_cast<std::int64_t>(i));
      const long long act0 = first ? 0 : inner, other0 = first ? inner : 0;
      const long long half = kGatedGemmBlockN / 2;
      for (long long j = 0; j < inner; ++j) {
        const std::int64_t want = (j / half) * kGatedGemmBlockN + j % half;
        EXPECT_EQ(dst[static_cast<std::size_t>(act0 + j)], want) << "activated row " << j;
        EXPECT_EQ(dst[static_cast<std::size_t>(other0 + j)], want + half) << "other row " << j;
      }
    }
  }
}

TEST(GatedLayout, KernelOnlyForHopperSixteenBitAndWholeTiles) {
  EXPECT_FALSE(gated_gemm_supported(8, 0, ElemType::kF16, 512, 2048, ActKind::kGeluErf));
  EXPECT_FALSE(gated_gemm_supported(8, 9, ElemType::kBF16, 512, 2048, ActKind::kGeluErf));
  EXPECT_FALSE(gated_gemm_supported(10, 0, ElemType::kF16, 512, 2048, ActKind::kGeluErf));
  EXPECT_FALSE(gated_gemm_supported(9, 0, ElemType::kF32, 512, 2048, ActKind::kGeluErf));
  EXPECT_FALSE(gated_gemm_supported(9, 0, ElemType::kF16, 100, 2048, ActKind::kGeluErf));
  EXPECT_FALSE(gated_gemm_supported(9, 0, ElemType::kF16, 512, 2000, ActKind::kGeluErf));
  EXPECT_FALSE(gated_gemm_supported(9, 0, ElemType::kF16, 512, 2048, ActKind::kNone));
}

TEST(GatedLayout, AlignmentRules) {
  alignas(16) static std::uint16_t buf[64];
  GatedGemmParams p;
  p.x = buf;
  p.ldx = 512;
  p.out = buf;
  p.ldo = 2048;
  EXPECT_TRUE(gated_gemm_aligned(p));
  p.ldx = 516;  // rows 1032 bytes apart: not a multiple of 16
  EXPECT_FALSE(gated_gemm_aligned(p));
  p.ldx = 512;
  p.x = buf + 1;  // 2 bytes off
  EXPECT_FALSE(gated_gemm_aligned(p));
  p.x = buf;
  p.ldo = 2049;
  EXPECT_FALSE(gated_gemm_aligned(p));
}

}  // namespace
}  // namespace embd::backend::cuda
