// Launchers for the pointwise and pooling kernels (pointwise_kernels.cu): the Linear epilogue
// (F32 bias + activation, in place), GLU, and per-sequence mean / CLS pooling. Enqueued on
// `stream`; each returns the launch error. Math in F32, stores rounded to nearest even.
#pragma once

#include "launch_common.h"

namespace embd::backend::cuda {

// y[r, c] = act(y[r, c] + bias[c]) for an [rows, cols] matrix with row stride ld.
// bias may be null (activation only).
cudaError_t launch_bias_act(ElemType type, void* y, long long rows, long long cols, long long ld,
                            const float* bias, ActKind act, cudaStream_t stream);

struct GluParams {
  ElemType type = ElemType::kF32;  // in and out
  long long rows = 0;
  long long inner = 0;  // I: in has 2I columns, out has I
  const void* in = nullptr;
  long long in_ld = 0;
  void* out = nullptr;
  long long out_ld = 0;
  bool activate_first_half = true;
  ActKind act = ActKind::kGeluErf;
  // > 0: `in` is interleaved in blocks (the gated GEMM's weight layout, gated_gemm_launch.h):
  // output column c reads column (c / block) * 2 * block + c % block, activated, and the column
  // `block` after it. activate_first_half must then be true. block must be a multiple of 8.
  long long interleave_block = 0;
};
cudaError_t launch_glu(const GluParams& p, cudaStream_t stream);

struct PoolParams {
  ElemType type = ElemType::kF32;  // hidden
  const void* hidden = nullptr;
  long long width = 0;
  long long ld = 0;
  const std::int32_t* cu_seqlens = nullptr;  // device [batch + 1]
  long long batch = 0;
  bool mean = true;  // false: CLS (first row of each sequence)
  float* out = nullptr;  // [batch, width], row stride width; empty sequences give zeros
};
cudaError_t launch_pool(const PoolParams& p, cudaStream_t stream);

}  // namespace embd::backend::cuda
