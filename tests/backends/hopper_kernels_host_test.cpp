// The Hopper kernels' host-side rules, checked without a GPU: the fused gated projection's weight
// layout (gated_gemm_launch.h: the kernel reads 256-row blocks of the stored weight as 128
// activated rows, then the 128 rows of the other half that multiply them), and which devices,
// shapes and buffers it and the fused Linear + LayerNorm (linear_layernorm_launch.h) take. Their
// arithmetic is covered by BackendOpTest.GatedLinear and BackendOpTest.LinearLayerNorm on a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "backends/cuda/gated_gemm_launch.h"
#include "backends/cuda/linear_layernorm_launch.h"
#include "backends/cuda/tensor_map.h"

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

// Only the false cases: the true one (9.0, F16/BF16, K % 64 == 0, N = 512) also needs the
// driver's tensor-map encoder, which a machine without a driver lacks.
TEST(LinearLayerNormHost, KernelOnlyForHopperSixteenBitAndWidth512) {
  EXPECT_EQ(kLinearLayerNormWidth, 512);
  EXPECT_FALSE(linear_layernorm_supported(8, 0, ElemType::kF16, 512, 512));
  EXPECT_FALSE(linear_layernorm_supported(8, 9, ElemType::kBF16, 512, 512));
  EXPECT_FALSE(linear_layernorm_supported(10, 0, ElemType::kF16, 512, 512));
  EXPECT_FALSE(linear_layernorm_supported(9, 0, ElemType::kF32, 512, 512));
  EXPECT_FALSE(linear_layernorm_supported(9, 0, ElemType::kF16, 100, 512));   // K % 64 != 0
  EXPECT_FALSE(linear_layernorm_supported(9, 0, ElemType::kBF16, 32, 512));   // less than one k-block
  EXPECT_FALSE(linear_layernorm_supported(9, 0, ElemType::kF16, 0, 512));
  EXPECT_FALSE(linear_layernorm_supported(9, 0, ElemType::kF16, 512, 768));   // BERT-base
  EXPECT_FALSE(linear_layernorm_supported(9, 0, ElemType::kF16, 512, 384));
  EXPECT_FALSE(linear_layernorm_supported(9, 0, ElemType::kF16, 512, 256));   // half of one row
  EXPECT_FALSE(linear_layernorm_supported(9, 0, ElemType::kF16, 512, 1024));
}

// The true cases, where this machine's driver encodes tensor maps.
TEST(LinearLayerNormHost, KernelForHopperWhereTheDriverEncodesTensorMaps) {
  if (!tensor_maps_available()) GTEST_SKIP() << "no driver offering cuTensorMapEncodeTiled";
  EXPECT_TRUE(linear_layernorm_supported(9, 0, ElemType::kF16, 512, 512));
  EXPECT_TRUE(linear_layernorm_supported(9, 0, ElemType::kBF16, 2048, 512));
  EXPECT_TRUE(linear_layernorm_supported(9, 0, ElemType::kF16, 64, 512));
}

TEST(LinearLayerNormHost, AlignmentRules) {
  alignas(16) static std::uint16_t buf[64];
  LinearLayerNormParams p;
  p.x = buf;
  p.ldx = 512;
  p.residual = buf;
  p.ldr = 512;
  p.out = buf;  // may alias the residual
  p.ldo = 512;
  EXPECT_TRUE(linear_layernorm_aligned(p));
  p.ldx = 2056;  // padded rows, still 16-byte multiples
  p.ldr = 520;
  p.ldo = 528;
  EXPECT_TRUE(linear_layernorm_aligned(p));
  p.residual = nullptr;  // no residual: its stride is not looked at
  p.ldr = 3;
  EXPECT_TRUE(linear_layernorm_aligned(p));

  const auto misaligned = [&](const char* what, auto change) {
    LinearLayerNormParams q = p;
    q.residual = buf;
    q.ldr = 512;
    change(q);
    EXPECT_FALSE(linear_layernorm_aligned(q)) << what;
  };
  misaligned("x 2 bytes off", [](LinearLayerNormParams& q) { q.x = buf + 1; });
  misaligned("x 8 bytes off", [](LinearLayerNormParams& q) { q.x = buf + 4; });
  misaligned("x rows 1030 bytes apart", [](LinearLayerNormParams& q) { q.ldx = 515; });
  misaligned("x rows 1032 bytes apart", [](LinearLayerNormParams& q) { q.ldx = 516; });
  misaligned("residual 2 bytes off", [](LinearLayerNormParams& q) { q.residual = buf + 1; });
  misaligned("residual rows 1036 bytes apart", [](LinearLayerNormParams& q) { q.ldr = 518; });
  misaligned("out 4 bytes off", [](LinearLayerNormParams& q) { q.out = buf + 2; });
  misaligned("out rows 1026 bytes apart", [](LinearLayerNormParams& q) { q.ldo = 513; });
}

}  // namespace
}  // namespace embd::backend::cuda
