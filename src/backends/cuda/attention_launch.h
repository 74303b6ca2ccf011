// Launchers for padding-free (varlen) fused attention (attention_kernels.cu, attention_mma.cu,
// attention_wgmma_sm90a.cu).
//
// Sequences are packed rows of one [T, 3H] QKV matrix, delimited by cu_seqlens. The kernels are
// flash-style: a grid over (sequence, query block, head), K/V tiles through shared memory, an
// online softmax in F32 and the ALiBi bias -slope_h * |i - j| computed in F32 inside the kernel
// (or a relative-position table's entry for j - i, read from shared memory).
// No [L, L] buffer exists, so memory is O(L). Enqueued on `stream`; returns the launch error.
#pragma once

#include "launch_common.h"

namespace embd::backend::cuda {

struct AttentionParams {
  ElemType type = ElemType::kF32;  // qkv and out
  const void* qkv = nullptr;       // [T, 3H]: Q | K | V, head h at columns h*d .. h*d+d-1 of each
  long long qkv_ld = 0;
  void* out = nullptr;             // [T, H]
  long long out_ld = 0;
  const std::int32_t* cu_seqlens = nullptr;  // device [batch + 1]
  long long batch = 0;
  long long max_seqlen = 0;
  int num_heads = 0;
  int head_dim = 0;
  float scale = 1.0f;                  // multiplies q.k before the bias
  // With relative_bias: its reach (AttentionArgs::relative_reach, <= kMaxAttentionRelativeReach).
  int relative_reach = 0;
  const float* alibi_slopes = nullptr;  // device [num_heads] or null (no bias)
  // Device scratch of batch * num_heads floats, or null. With it and ALiBi, the tensor-core
  // kernel skips key tiles so far from the query block that the bias makes every weight in them
  // smaller than 2^-40 of the row's largest (see attention_mma_kernel.cuh); the result is
  // unchanged far below F32 rounding.
  float* key_norm_scratch = nullptr;
  // Device F32 [num_heads * head_dim] each, or null: added to every query row / output row (the
  // Q and V parts of a QKV bias the projection left out; see AttentionArgs).
  const float* q_bias = nullptr;
  const float* v_bias = nullptr;
  // Launch early (early_launch.cuh; the backend sets it on sm_90+).
  bool early_launch = false;
  // The tensor-core kernel's products with Hopper's wgmma instead of mma.sync
  // (attention_wgmma_sm90a.cu). Only on a device of compute capability 9.0 (the backend decides).
  bool wgmma = false;
  // Device F32 [num_heads][2 * relative_reach + 1] or null (AttentionArgs::relative_bias). Never
  // together with alibi_slopes. Last, and relative_reach in what was padding, so that the ALiBi
  // kernels see every other field where it always was, in a parameter block of 128 bytes: at 136
  // nvcc compiled the unchanged ALiBi kernels to other code (1893 PTX instructions instead of
  // 2049); at 128 they are instruction for instruction what they were (BENCHMARKS.md, run 201).
  const float* relative_bias = nullptr;
};
static_assert(sizeof(AttentionParams) <= 128, "keep the kernels' parameter block at 128 bytes (see relative_bias)");

// Largest relative_reach the kernels take (AttentionArgs' limit: a head's table fits in shared memory).
constexpr int kMaxAttentionRelativeReach = 256;

// Largest head dimension the portable kernel handles.
constexpr int kMaxAttentionHeadDim = 128;

// Whether the launchers handle this head dimension (any of 1..kMaxAttentionHeadDim).
bool attention_head_dim_supported(int head_dim);

// Whether p's relative-position table, if any, has a reach the kernels take (1..kMaxAttentionRelativeReach).
bool attention_relative_table_supported(const AttentionParams& p);

// The portable kernel: any dtype, any head dimension 1..kMaxAttentionHeadDim, F32 FMA math.
cudaError_t launch_attention_simple(const AttentionParams& p, cudaStream_t stream);

// The tensor-core kernel (mma.sync m16n8k16, sm_80+): F16/BF16, head_dim 64, 16-byte aligned
// rows (qkv pointer and ld*2 multiples of 16). attention_mma_applicable() says whether it may be
// used for `p`.
bool attention_mma_applicable(const AttentionParams& p);
cudaError_t launch_attention_mma(const AttentionParams& p, cudaStream_t stream);

// The tensor-core kernel with wgmma (Hopper, compute capability 9.0 only) on `grid`, after
// launch_attention_mma's checks and pre-pass; launch_attention_mma calls it when p.wgmma.
cudaError_t launch_attention_wgmma(const AttentionParams& p, dim3 grid, cudaStream_t stream);

}  // namespace embd::backend::cuda
