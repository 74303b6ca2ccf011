// Launchers for the LayerNorm kernels (norm_kernels.cu): embedding gather + LayerNorm, and
// residual add + LayerNorm. One block per row; statistics in F32 over the row cached in shared
// memory, so rows of at most kMaxNormWidth features. Enqueued on `stream`; returns the launch error.
#pragma once

#include "launch_common.h"

namespace embd::backend::cuda {

constexpr long long kMaxNormWidth = 8192;  // 32 KB of F32 row cache per block (under the 48 KB default)

struct EmbedLnParams {
  const std::int32_t* ids = nullptr;
  const std::int32_t* type_ids = nullptr;   // null: type 0
  const std::int32_t* positions = nullptr;  // null: no position rows added
  long long tokens = 0;
  long long width = 0;                      // H
  ElemType table_type = ElemType::kF32;     // dtype of all three tables
  const void* word = nullptr;
  long long word_ld = 0;
  const void* type_table = nullptr;         // null: none
  long long type_ld = 0;
  const void* pos_table = nullptr;          // null: none
  long long pos_ld = 0;
  const float* gamma = nullptr;
  const float* beta = nullptr;
  float eps = 1e-12f;
  ElemType out_type = ElemType::kF32;
  void* out = nullptr;
  long long out_ld = 0;
};
cudaError_t launch_embed_layernorm(const EmbedLnParams& p, cudaStream_t stream);

struct AddLnParams {
  ElemType type = ElemType::kF32;  // x, residual and out
  long long rows = 0;
  long long width = 0;
  const void* x = nullptr;
  long long x_ld = 0;
  const void* residual = nullptr;  // null: none
  long long residual_ld = 0;
  const float* bias = nullptr;     // [width] F32 added to x (a Linear's deferred bias), or null
  const float* gamma = nullptr;
  const float* beta = nullptr;
  float eps = 1e-12f;
  void* out = nullptr;  // may alias x or residual (each row is read fully before it is written)
  long long out_ld = 0;
  // Launch early (early_launch.cuh; the backend sets it on sm_90+).
  bool early_launch = false;
};
cudaError_t launch_add_layernorm(const AddLnParams& p, cudaStream_t stream);

}  // namespace embd::backend::cuda
