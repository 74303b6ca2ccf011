#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>

#include "gpu_bench_kernels.h"

namespace embd::bench {
namespace {

__device__ float load(const void* p, int t, long long i) {
  if (t == 1) return __half2float(static_cast<const __half*>(p)[i]);
  if (t == 2) return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
  return static_cast<const float*>(p)[i];
}

__device__ std::uint32_t hash(std::uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

__global__ void fill_kernel(void* data, int t, std::size_t n, std::uint32_t seed, float lo, float hi) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const std::uint32_t h = hash(static_cast<std::uint32_t>(i) ^ hash(seed + static_cast<std::uint32_t>(i >> 32)));
    const float v = lo + (hi - lo) * (static_cast<float>(h >> 8) * (1.0f / 16777216.0f));
    if (t == 1) {
      static_cast<__half*>(data)[i] = __float2half_rn(v);
    } else if (t == 2) {
      static_cast<__nv_bfloat16*>(data)[i] = __float2bfloat16_rn(v);
    } else {
      static_cast<float*>(data)[i] = v;
    }
  }
}

__global__ void nonfinite_kernel(const void* data, int t, long long rows, long long cols, long long ld,
                                 unsigned long long* count) {
  unsigned long long local = 0;
  const long long n = rows * cols;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long r = i / cols;
    const float v = load(data, t, r * ld + (i - r * cols));
    if (!isfinite(v)) ++local;
  }
  if (local != 0) atomicAdd(count, local);
}

constexpr int kD = 64;

__global__ void attention_reference_kernel(const void* qkv, int t, long long ld, const std::int32_t* cu,
                                           long long batch, long long tokens, int heads, float scale,
                                           const float* slopes, float* out) {
  const long long row = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  const int h = blockIdx.y;
  if (row >= tokens) return;
  long long lo = 0, hi = batch;  // find b with cu[b] <= row < cu[b + 1]
  while (hi - lo > 1) {
    const long long mid = (lo + hi) / 2;
    if (cu[mid] <= row) lo = mid; else hi = mid;
  }
  const long long start = cu[lo], len = cu[lo + 1] - start, i = row - start;
  const long long hidden = static_cast<long long>(heads) * kD;
  float q[kD], acc[kD];
  for (int d = 0; d < kD; ++d) {
    q[d] = load(qkv, t, row * ld + h * kD + d);
    acc[d] = 0.0f;
  }
  const float slope = slopes != nullptr ? slopes[h] : 0.0f;
  float mx = -INFINITY;
  for (long long j = 0; j < len; ++j) {
    float s = 0.0f;
    for (int d = 0; d < kD; ++d) s += q[d] * load(qkv, t, (start + j) * ld + hidden + h * kD + d);
    mx = fmaxf(mx, s * scale - slope * fabsf(static_cast<float>(i - j)));
  }
  float sum = 0.0f;
  for (long long j = 0; j < len; ++j) {
    float s = 0.0f;
    for (int d = 0; d < kD; ++d) s += q[d] * load(qkv, t, (start + j) * ld + hidden + h * kD + d);
    const float p = expf(s * scale - slope * fabsf(static_cast<float>(i - j)) - mx);
    sum += p;
    for (int d = 0; d < kD; ++d) acc[d] += p * load(qkv, t, (start + j) * ld + 2 * hidden + h * kD + d);
  }
  for (int d = 0; d < kD; ++d) out[row * hidden + h * kD + d] = acc[d] / sum;
}

}  // namespace

cudaError_t fill_uniform(void* data, int elem_type, std::size_t n, std::uint32_t seed, float lo, float hi,
                         cudaStream_t stream) {
  fill_kernel<<<4096, 256, 0, stream>>>(data, elem_type, n, seed, lo, hi);
  return cudaGetLastError();
}

cudaError_t count_nonfinite(const void* data, int elem_type, long long rows, long long cols, long long ld,
                            unsigned long long* count, cudaStream_t stream) {
  nonfinite_kernel<<<4096, 256, 0, stream>>>(data, elem_type, rows, cols, ld, count);
  return cudaGetLastError();
}

cudaError_t attention_reference(const void* qkv, int elem_type, long long ld, const std::int32_t* cu_seqlens,
                                long long batch, long long tokens, int heads, float scale, const float* slopes,
                                float* out, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((tokens + 127) / 128), static_cast<unsigned>(heads));
  attention_reference_kernel<<<grid, 128, 0, stream>>>(qkv, elem_type, ld, cu_seqlens, batch, tokens, heads,
                                                       scale, slopes, out);
  return cudaGetLastError();
}

}  // namespace embd::bench
