// LayerNorm kernels: see norm_launch.h. Each block owns one row: it reads the whole row into
// shared memory (F32) before writing anything, which makes in-place use (out aliasing x or the
// residual) safe, then computes mean and variance in two passes (stable for large means).
#include "device_util.cuh"
#include "norm_launch.h"

namespace embd::backend::cuda {
namespace {

constexpr int kNormThreads = 256;

// Normalises the F32 row in `row` (width n) and writes it out. Ends without a trailing barrier;
// the caller's block is done with `row` afterwards.
template <typename TOut>
__device__ void normalize_row(const float* row, long long n, const float* gamma, const float* beta,
                              float eps, TOut* out, float* scratch) {
  float s = 0.0f;
  for (long long c = threadIdx.x; c < n; c += blockDim.x) s += row[c];
  const float mean = block_sum(s, scratch) / static_cast<float>(n);
  float v = 0.0f;
  for (long long c = threadIdx.x; c < n; c += blockDim.x) {
    const float d = row[c] - mean;
    v += d * d;
  }
  const float var = block_sum(v, scratch) / static_cast<float>(n);
  const float rstd = rsqrtf(var + eps);
  for (long long c = threadIdx.x; c < n; c += blockDim.x) {
    out[c] = from_f32<TOut>((row[c] - mean) * rstd * gamma[c] + beta[c]);
  }
}

template <typename TTab, typename TOut>
__global__ void __launch_bounds__(kNormThreads) embed_layernorm_kernel(EmbedLnParams p) {
  extern __shared__ float row[];
  __shared__ float scratch[32];
  const long long t = blockIdx.x;
  const long long n = p.width;
  const auto* word = static_cast<const TTab*>(p.word) + static_cast<long long>(p.ids[t]) * p.word_ld;
  const TTab* type_row = nullptr;
  if (p.type_table != nullptr) {
    const long long tid = p.type_ids != nullptr ? p.type_ids[t] : 0;
    type_row = static_cast<const TTab*>(p.type_table) + tid * p.type_ld;
  }
  const TTab* pos_row = nullptr;
  if (p.pos_table != nullptr && p.positions != nullptr) {
    pos_row = static_cast<const TTab*>(p.pos_table) + static_cast<long long>(p.positions[t]) * p.pos_ld;
  }
  for (long long c = threadIdx.x; c < n; c += blockDim.x) {
    float v = to_f32(word[c]);
    if (type_row != nullptr) v += to_f32(type_row[c]);
    if (pos_row != nullptr) v += to_f32(pos_row[c]);
    row[c] = v;
  }
  __syncthreads();
  normalize_row(row, n, p.gamma, p.beta, p.eps, static_cast<TOut*>(p.out) + t * p.out_ld, scratch);
}

template <typename T>
__global__ void __launch_bounds__(kNormThreads) add_layernorm_kernel(AddLnParams p) {
  extern __shared__ float row[];
  __shared__ float scratch[32];
  const long long t = blockIdx.x;
  const long long n = p.width;
  const T* x = static_cast<const T*>(p.x) + t * p.x_ld;
  const T* r = p.residual != nullptr ? static_cast<const T*>(p.residual) + t * p.residual_ld : nullptr;
  for (long long c = threadIdx.x; c < n; c += blockDim.x) {
    float v = to_f32(x[c]);
    if (r != nullptr) v += to_f32(r[c]);
    row[c] = v;
  }
  __syncthreads();  // the whole row is in shared memory before any thread writes `out`
  normalize_row(row, n, p.gamma, p.beta, p.eps, static_cast<T*>(p.out) + t * p.out_ld, scratch);
}

template <typename TTab, typename TOut>
cudaError_t launch_embed_typed(const EmbedLnParams& p, cudaStream_t stream) {
  const size_t smem = static_cast<size_t>(p.width) * sizeof(float);
  embed_layernorm_kernel<TTab, TOut>
      <<<static_cast<unsigned>(p.tokens), kNormThreads, smem, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_embed_layernorm(const EmbedLnParams& p, cudaStream_t stream) {
  if (p.tokens <= 0) return cudaSuccess;
  if (p.width <= 0 || p.width > kMaxNormWidth || p.tokens > 0x7fffffffLL) return cudaErrorInvalidValue;
  cudaError_t err = cudaErrorInvalidValue;
  EMBD_DISPATCH_ELEM(p.table_type, TTab,
                     EMBD_DISPATCH_ELEM(p.out_type, TOut,
                                        err = (launch_embed_typed<TTab, TOut>(p, stream))));
  return err;
}

cudaError_t launch_add_layernorm(const AddLnParams& p, cudaStream_t stream) {
  if (p.rows <= 0) return cudaSuccess;
  if (p.width <= 0 || p.width > kMaxNormWidth || p.rows > 0x7fffffffLL) return cudaErrorInvalidValue;
  const size_t smem = static_cast<size_t>(p.width) * sizeof(float);
  EMBD_DISPATCH_ELEM(p.type, T,
                     add_layernorm_kernel<T>
                     <<<static_cast<unsigned>(p.rows), kNormThreads, smem, stream>>>(p));
  return cudaGetLastError();
}

}  // namespace embd::backend::cuda
