// LayerNorm kernels: see norm_launch.h. Two shapes of the same computation, both reading a whole
// row before writing any of it (so out may alias x or the residual) and taking mean and variance
// in two passes (stable for large means):
//  * warp per row (the common case: width a multiple of 128 up to 1024, rows aligned to 4
//    elements): each lane keeps its columns in registers, reductions are warp shuffles, no
//    shared memory and no barriers; eight rows per block. This runs at memory bandwidth.
//  * block per row (any other width up to kMaxNormWidth): the row is cached in shared memory as
//    F32, with 16-byte vectors when pointers, width and strides allow (decided per launch).
#include <cstdint>

#include "device_util.cuh"
#include "early_launch.cuh"
#include "norm_launch.h"

namespace embd::backend::cuda {
namespace {

constexpr int kNormThreads = 256;

// Normalises the F32 row in `row` (width n) and writes it out, in 16-byte vectors when `vec`
// (out 16-byte aligned and n a multiple of the vector width). Ends without a trailing barrier;
// the caller's block is done with `row` afterwards.
template <typename TOut>
__device__ void normalize_row(const float* row, long long n, const float* gamma, const float* beta,
                              float eps, TOut* out, bool vec, float* scratch) {
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
  if (vec) {
    constexpr int kN = Vec16<TOut>::kN;
    const long long step = blockDim.x * static_cast<long long>(kN);
    for (long long c = threadIdx.x * static_cast<long long>(kN); c < n; c += step) {
      float y[kN];
#pragma unroll
      for (int e = 0; e < kN; ++e) y[e] = (row[c + e] - mean) * rstd * gamma[c + e] + beta[c + e];
      store_vec16(out + c, y);
    }
    return;
  }
  for (long long c = threadIdx.x; c < n; c += blockDim.x) {
    out[c] = from_f32<TOut>((row[c] - mean) * rstd * gamma[c] + beta[c]);
  }
}

// row[c] += src[c] for the n columns (or row[c] = src[c] when `first`), in vectors when `vec`.
template <typename T>
__device__ __forceinline__ void accumulate_row(float* row, const T* src, long long n, bool vec, bool first) {
  if (vec) {
    constexpr int kN = Vec16<T>::kN;
    const long long step = blockDim.x * static_cast<long long>(kN);
    for (long long c = threadIdx.x * static_cast<long long>(kN); c < n; c += step) {
      float v[kN];
      load_vec16(src + c, v);
#pragma unroll
      for (int e = 0; e < kN; ++e) row[c + e] = first ? v[e] : row[c + e] + v[e];
    }
    return;
  }
  for (long long c = threadIdx.x; c < n; c += blockDim.x) {
    const float v = to_f32(src[c]);
    row[c] = first ? v : row[c] + v;
  }
}

// Vector flags for one launch: `in` for every row read, `out` for the row written.
struct VecFlags {
  bool in = false;
  bool out = false;
  bool bias = false;  // add_layernorm's F32 bias
};

template <typename TTab, typename TOut>
__global__ void __launch_bounds__(kNormThreads) embed_layernorm_kernel(EmbedLnParams p, VecFlags vec) {
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
  // Each thread accumulates the same columns in every pass, so no barrier is needed between them.
  accumulate_row(row, word, n, vec.in, true);
  if (type_row != nullptr) accumulate_row(row, type_row, n, vec.in, false);
  if (pos_row != nullptr) accumulate_row(row, pos_row, n, vec.in, false);
  __syncthreads();
  normalize_row(row, n, p.gamma, p.beta, p.eps, static_cast<TOut*>(p.out) + t * p.out_ld, vec.out, scratch);
}

template <typename T>
__global__ void __launch_bounds__(kNormThreads) add_layernorm_kernel(AddLnParams p, VecFlags vec) {
  wait_for_previous_kernels();
  extern __shared__ float row[];
  __shared__ float scratch[32];
  const long long t = blockIdx.x;
  const long long n = p.width;
  const T* x = static_cast<const T*>(p.x) + t * p.x_ld;
  const T* r = p.residual != nullptr ? static_cast<const T*>(p.residual) + t * p.residual_ld : nullptr;
  accumulate_row(row, x, n, vec.in, true);
  if (r != nullptr) accumulate_row(row, r, n, vec.in, false);
  if (p.bias != nullptr) {
    // F32 vectors split the columns differently from x's: let every column settle first.
    __syncthreads();
    accumulate_row(row, p.bias, n, vec.bias, false);
  }
  __syncthreads();  // the whole row is in shared memory before any thread writes `out`
  normalize_row(row, n, p.gamma, p.beta, p.eps, static_cast<T*>(p.out) + t * p.out_ld, vec.out, scratch);
}

// ---- warp per row ----

constexpr int kWarpRows = 8;              // rows (warps) per block
constexpr int kLaneChunks = 8;            // at most 8 chunks of 4 columns per lane: width <= 1024
// Widths up to 512 (4 chunks) get kernels sized for 4 chunks: 40 registers instead of 59-76, so 6
// blocks per SM instead of 4, i.e. 1.5x the rows (and loads) in flight for a memory-bound kernel.
constexpr int kSmallLaneChunks = 4;
constexpr long long kChunkCols = 32 * 4;  // columns one chunk step covers across the warp

// Whether a row of `width` elements at `p` with stride `ld` suits the warp kernels.
template <typename T>
bool warp_row_ok(const void* p, long long width, long long ld) {
  return width % kChunkCols == 0 && width / kChunkCols <= kLaneChunks && ld % 4 == 0 &&
         reinterpret_cast<std::uintptr_t>(p) % (4 * sizeof(T)) == 0;
}

// LayerNorm of the row a warp holds (v[c] = columns (c * 32 + lane) * 4 .. + 3), written to out.
template <int kMaxChunks, typename TOut>
__device__ __forceinline__ void warp_normalize(float (&v)[kMaxChunks][4], int chunks, long long n,
                                               const float* gamma, const float* beta, float eps, TOut* out) {
  const int lane = threadIdx.x & 31;
  float s = 0.0f;
#pragma unroll
  for (int c = 0; c < kMaxChunks; ++c) {
    if (c < chunks) s += (v[c][0] + v[c][1]) + (v[c][2] + v[c][3]);
  }
  const float mean = warp_sum(s) / static_cast<float>(n);
  float q = 0.0f;
#pragma unroll
  for (int c = 0; c < kMaxChunks; ++c) {
    if (c >= chunks) continue;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float d = v[c][e] - mean;
      q = fmaf(d, d, q);
    }
  }
  const float rstd = rsqrtf(warp_sum(q) / static_cast<float>(n) + eps);
#pragma unroll
  for (int c = 0; c < kMaxChunks; ++c) {
    if (c >= chunks) continue;
    const long long col = (static_cast<long long>(c) * 32 + lane) * 4;
    float g[4], b[4], y[4];
    load4(gamma + col, g);
    load4(beta + col, b);
#pragma unroll
    for (int e = 0; e < 4; ++e) y[e] = (v[c][e] - mean) * rstd * g[e] + b[e];
    store4(out + col, y);
  }
}

// v[c] (+)= the lane's columns of `src`.
template <int kMaxChunks, typename T>
__device__ __forceinline__ void warp_accumulate(float (&v)[kMaxChunks][4], int chunks, const T* src, bool first) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int c = 0; c < kMaxChunks; ++c) {
    if (c >= chunks) continue;
    float x[4];
    load4(src + (static_cast<long long>(c) * 32 + lane) * 4, x);
#pragma unroll
    for (int e = 0; e < 4; ++e) v[c][e] = first ? x[e] : v[c][e] + x[e];
  }
}

template <int kMaxChunks, typename TTab, typename TOut>
__global__ void __launch_bounds__(kWarpRows * 32, kMaxChunks <= kSmallLaneChunks ? 6 : 1)
    embed_layernorm_warp_kernel(EmbedLnParams p) {
  const long long t = static_cast<long long>(blockIdx.x) * kWarpRows + (threadIdx.x >> 5);
  if (t >= p.tokens) return;  // uniform over the warp
  const int chunks = static_cast<int>(p.width / kChunkCols);
  float v[kMaxChunks][4];
  warp_accumulate(v, chunks, static_cast<const TTab*>(p.word) + static_cast<long long>(p.ids[t]) * p.word_ld, true);
  if (p.type_table != nullptr) {
    const long long tid = p.type_ids != nullptr ? p.type_ids[t] : 0;
    warp_accumulate(v, chunks, static_cast<const TTab*>(p.type_table) + tid * p.type_ld, false);
  }
  if (p.pos_table != nullptr && p.positions != nullptr) {
    warp_accumulate(v, chunks, static_cast<const TTab*>(p.pos_table) + static_cast<long long>(p.positions[t]) * p.pos_ld,
                    false);
  }
  warp_normalize(v, chunks, p.width, p.gamma, p.beta, p.eps, static_cast<TOut*>(p.out) + t * p.out_ld);
}

template <int kMaxChunks, typename T>
__global__ void __launch_bounds__(kWarpRows * 32, kMaxChunks <= kSmallLaneChunks ? 6 : 1)
    add_layernorm_warp_kernel(AddLnParams p) {
  wait_for_previous_kernels();
  const long long t = static_cast<long long>(blockIdx.x) * kWarpRows + (threadIdx.x >> 5);
  if (t >= p.rows) return;  // uniform over the warp
  const int chunks = static_cast<int>(p.width / kChunkCols);
  float v[kMaxChunks][4];
  warp_accumulate(v, chunks, static_cast<const T*>(p.x) + t * p.x_ld, true);
  if (p.bias != nullptr) warp_accumulate(v, chunks, p.bias, false);
  if (p.residual != nullptr) warp_accumulate(v, chunks, static_cast<const T*>(p.residual) + t * p.residual_ld, false);
  warp_normalize(v, chunks, p.width, p.gamma, p.beta, p.eps, static_cast<T*>(p.out) + t * p.out_ld);
}

bool params_ok(const float* gamma, const float* beta) {
  return reinterpret_cast<std::uintptr_t>(gamma) % 16 == 0 && reinterpret_cast<std::uintptr_t>(beta) % 16 == 0;
}

unsigned warp_grid(long long rows) { return static_cast<unsigned>((rows + kWarpRows - 1) / kWarpRows); }

// ---- launch ----

template <typename TTab, typename TOut>
cudaError_t launch_embed_typed(const EmbedLnParams& p, cudaStream_t stream) {
  if (params_ok(p.gamma, p.beta) && warp_row_ok<TOut>(p.out, p.width, p.out_ld) &&
      warp_row_ok<TTab>(p.word, p.width, p.word_ld) &&
      (p.type_table == nullptr || warp_row_ok<TTab>(p.type_table, p.width, p.type_ld)) &&
      (p.pos_table == nullptr || warp_row_ok<TTab>(p.pos_table, p.width, p.pos_ld))) {
    if (p.width <= kSmallLaneChunks * kChunkCols) {
      embed_layernorm_warp_kernel<kSmallLaneChunks, TTab, TOut><<<warp_grid(p.tokens), kWarpRows * 32, 0, stream>>>(p);
    } else {
      embed_layernorm_warp_kernel<kLaneChunks, TTab, TOut><<<warp_grid(p.tokens), kWarpRows * 32, 0, stream>>>(p);
    }
    return cudaGetLastError();
  }
  constexpr int kTab = static_cast<int>(sizeof(TTab));
  VecFlags vec;
  vec.in = vec16_ok(p.word, p.width, p.word_ld, kTab) &&
           (p.type_table == nullptr || vec16_ok(p.type_table, p.width, p.type_ld, kTab)) &&
           (p.pos_table == nullptr || vec16_ok(p.pos_table, p.width, p.pos_ld, kTab));
  vec.out = vec16_ok(p.out, p.width, p.out_ld, static_cast<int>(sizeof(TOut)));
  const size_t smem = static_cast<size_t>(p.width) * sizeof(float);
  embed_layernorm_kernel<TTab, TOut>
      <<<static_cast<unsigned>(p.tokens), kNormThreads, smem, stream>>>(p, vec);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_add_typed(const AddLnParams& p, cudaStream_t stream) {
  if (params_ok(p.gamma, p.beta) && (p.bias == nullptr || warp_row_ok<float>(p.bias, p.width, 0)) &&
      warp_row_ok<T>(p.out, p.width, p.out_ld) &&
      warp_row_ok<T>(p.x, p.width, p.x_ld) &&
      (p.residual == nullptr || warp_row_ok<T>(p.residual, p.width, p.residual_ld))) {
    if (p.width <= kSmallLaneChunks * kChunkCols) {
      return launch_maybe_early(add_layernorm_warp_kernel<kSmallLaneChunks, T>, warp_grid(p.rows), kWarpRows * 32, 0,
                                stream, p.early_launch, nullptr, p);
    }
    return launch_maybe_early(add_layernorm_warp_kernel<kLaneChunks, T>, warp_grid(p.rows), kWarpRows * 32, 0, stream,
                              p.early_launch, nullptr, p);
  }
  constexpr int kBytes = static_cast<int>(sizeof(T));
  VecFlags vec;
  vec.in = vec16_ok(p.x, p.width, p.x_ld, kBytes) &&
           (p.residual == nullptr || vec16_ok(p.residual, p.width, p.residual_ld, kBytes));
  vec.out = vec16_ok(p.out, p.width, p.out_ld, kBytes);
  vec.bias = p.bias != nullptr && vec16_ok(p.bias, p.width, 0, static_cast<int>(sizeof(float)));
  const size_t smem = static_cast<size_t>(p.width) * sizeof(float);
  return launch_maybe_early(add_layernorm_kernel<T>, static_cast<unsigned>(p.rows), kNormThreads, smem, stream,
                            p.early_launch, nullptr, p, vec);
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
  cudaError_t err = cudaErrorInvalidValue;
  EMBD_DISPATCH_ELEM(p.type, T, err = launch_add_typed<T>(p, stream));
  return err;
}

}  // namespace embd::backend::cuda
