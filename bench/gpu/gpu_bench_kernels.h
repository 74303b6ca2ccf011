// Helper kernels for gpu_ops_bench: random fills, a non-finite counter (poisoned outputs) and a
// plain FP32 attention reference (one thread per query and head, two passes over the keys),
// independent of the backend's flash kernels. Each returns the launch error.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace embd::bench {

// elem_type: 0 = F32, 1 = F16, 2 = BF16 (embd::DType values).
cudaError_t fill_uniform(void* data, int elem_type, std::size_t n, std::uint32_t seed, float lo, float hi,
                         cudaStream_t stream);

// Adds to *count (device) the number of NaN / Inf among rows x cols elements with row stride ld.
cudaError_t count_nonfinite(const void* data, int elem_type, long long rows, long long cols, long long ld,
                            unsigned long long* count, cudaStream_t stream);

// out[T, heads * 64] (F32) = softmax(scale * q k^T - slope_h |i - j|) v per sequence, head_dim 64.
cudaError_t attention_reference(const void* qkv, int elem_type, long long ld, const std::int32_t* cu_seqlens,
                                long long batch, long long tokens, int heads, float scale, const float* slopes,
                                float* out, cudaStream_t stream);

}  // namespace embd::bench
