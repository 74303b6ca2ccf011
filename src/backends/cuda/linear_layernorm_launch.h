// Launcher for a Linear layer fused with the residual LayerNorm after it
// (linear_layernorm_sm90a.cu), Hopper only:
//
//   out[T, 512] = LayerNorm(x W^T + bias + residual) * gamma + beta    x [T, K], W [512, K]
//
// One tensor-core GEMM (wgmma, operands fetched by TMA) whose epilogue adds the bias and the
// residual to the F32 accumulators and normalises whole rows, so the projection never reaches
// memory: cuBLASLt + add_layernorm write it and read it back, together with the residual.
// Each 512-wide row is computed by a cluster of two blocks (256 columns each) that exchange
// their row sums through distributed shared memory. BERT-small's hidden size is what it serves
// (the attention output and MLP down projections of jina-embeddings-v2-small-en); other widths
// take the unfused path.
#pragma once

#include <cstdint>

#include "launch_common.h"

namespace embd::backend::cuda {

constexpr long long kLinearLayerNormWidth = 512;  // the only output width (H)

// Whether the kernel exists for this device (built for sm_90a; compute capability 9.0) and these
// sizes: F16/BF16, K % 64 == 0, N == kLinearLayerNormWidth.
bool linear_layernorm_supported(int cc_major, int cc_minor, ElemType type, long long k, long long n);

// A TMA descriptor (CUtensorMap: 128 bytes, 64-byte aligned) for the weight [512, K] as stored
// (row-major, no reordering), built once when the weight is prepared.
struct alignas(64) LinearLayerNormWeightMap {
  unsigned char bytes[128];
};
cudaError_t make_linear_layernorm_weight_map(ElemType type, const void* w, long long k,
                                             LinearLayerNormWeightMap* out);

struct LinearLayerNormParams {
  ElemType type = ElemType::kF16;
  long long rows = 0;             // T
  long long k = 0;                // K
  const void* x = nullptr;        // [T, K], row stride ldx
  long long ldx = 0;
  const void* residual = nullptr; // [T, 512], row stride ldr, or null (no residual)
  long long ldr = 0;
  const float* bias = nullptr;    // [512] or null
  const float* gamma = nullptr;   // [512]
  const float* beta = nullptr;    // [512]
  float eps = 1e-12f;
  void* out = nullptr;            // [T, 512], row stride ldo; may alias residual, not x
  long long ldo = 0;
  int sm_count = 0;               // persistent grid size
  // Launch early (early_launch.cuh; the backend sets it on sm_90+).
  bool early_launch = false;
};
// Whether x, residual and out are TMA-addressable: 16-byte aligned, row strides multiples of 16
// bytes.
bool linear_layernorm_aligned(const LinearLayerNormParams& p);
cudaError_t launch_linear_layernorm(const LinearLayerNormParams& p, const LinearLayerNormWeightMap& w,
                                    cudaStream_t stream);

}  // namespace embd::backend::cuda
