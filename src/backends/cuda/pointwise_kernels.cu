// Pointwise and pooling kernels: see pointwise_launch.h. The pointwise kernels have a 16-byte
// vector form, used when pointers, widths and row strides allow it, and a scalar fallback.
#include "device_util.cuh"
#include "pointwise_launch.h"

namespace embd::backend::cuda {
namespace {

constexpr int kThreads = 256;

// Grid-stride blocks for `n` elements: enough to fill any current GPU, never above the x limit.
unsigned grid_for(long long n) {
  long long blocks = (n + kThreads - 1) / kThreads;
  if (blocks > 65536) blocks = 65536;
  return static_cast<unsigned>(blocks < 1 ? 1 : blocks);
}

template <typename T>
__global__ void bias_act_kernel(T* y, long long rows, long long cols, long long ld, const float* bias,
                                ActKind act) {
  const long long n = rows * cols;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long r = i / cols;
    const long long c = i - r * cols;
    T* p = y + r * ld + c;
    float v = to_f32(*p);
    if (bias != nullptr) v += bias[c];
    *p = from_f32<T>(activate(v, act));
  }
}

// bias_act_kernel over 16-byte vectors (launch_bias_act checked vec16_ok for y).
template <typename T>
__global__ void bias_act_vec_kernel(T* y, long long rows, long long cols, long long ld, const float* bias,
                                    ActKind act) {
  constexpr int kN = Vec16<T>::kN;
  const long long per_row = cols / kN;
  const long long n = rows * per_row;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long r = i / per_row;
    const long long c = (i - r * per_row) * kN;
    T* p = y + r * ld + c;
    float v[kN];
    load_vec16(p, v);
#pragma unroll
    for (int e = 0; e < kN; ++e) {
      if (bias != nullptr) v[e] += bias[c + e];
      v[e] = activate(v[e], act);
    }
    store_vec16(p, v);
  }
}

// The input column of output column c's first factor, and how far its second factor is.
__device__ __forceinline__ long long glu_source_column(const GluParams& p, long long c) {
  if (p.interleave_block == 0) return c;
  const long long b = c / p.interleave_block;
  return b * 2 * p.interleave_block + (c - b * p.interleave_block);
}
__device__ __forceinline__ long long glu_second_offset(const GluParams& p) {
  return p.interleave_block == 0 ? p.inner : p.interleave_block;
}

template <typename T>
__global__ void glu_kernel(GluParams p) {
  const T* in = static_cast<const T*>(p.in);
  T* out = static_cast<T*>(p.out);
  const long long n = p.rows * p.inner;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long r = i / p.inner;
    const long long c = i - r * p.inner;
    const long long src = glu_source_column(p, c);
    const float first = to_f32(in[r * p.in_ld + src]);
    const float second = to_f32(in[r * p.in_ld + src + glu_second_offset(p)]);
    const float v = p.activate_first_half ? activate(first, p.act) * second
                                          : first * activate(second, p.act);
    out[r * p.out_ld + c] = from_f32<T>(v);
  }
}

// glu_kernel over 16-byte vectors (launch_glu checked in, out and inner for vec16_ok).
template <typename T>
__global__ void glu_vec_kernel(GluParams p) {
  constexpr int kN = Vec16<T>::kN;
  const T* in = static_cast<const T*>(p.in);
  T* out = static_cast<T*>(p.out);
  const long long per_row = p.inner / kN;
  const long long n = p.rows * per_row;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long r = i / per_row;
    const long long c = (i - r * per_row) * kN;
    float first[kN], second[kN], v[kN];
    const long long src = glu_source_column(p, c);  // a vector never straddles two blocks
    load_vec16(in + r * p.in_ld + src, first);
    load_vec16(in + r * p.in_ld + src + glu_second_offset(p), second);
#pragma unroll
    for (int e = 0; e < kN; ++e) {
      v[e] = p.activate_first_half ? activate(first[e], p.act) * second[e]
                                   : first[e] * activate(second[e], p.act);
    }
    store_vec16(out + r * p.out_ld + c, v);
  }
}

// Grid (batch, column blocks of 32). A block is 32 columns x 32 row groups: row group y sums
// rows y, y+32, ... of its sequence (loads unrolled so several are in flight), then the 32
// partials are added in a fixed order (deterministic). 32 groups keep one 8192-token sequence
// (16 blocks) from being latency-bound.
constexpr int kPoolCols = 32;
constexpr int kPoolRowGroups = 32;

template <typename T>
__global__ void __launch_bounds__(kPoolCols * kPoolRowGroups) pool_kernel(PoolParams p) {
  __shared__ float partial[kPoolRowGroups][kPoolCols];
  const long long b = blockIdx.x;
  const long long c = blockIdx.y * static_cast<long long>(kPoolCols) + threadIdx.x;
  const long long begin = p.cu_seqlens[b];
  const long long end = p.cu_seqlens[b + 1];
  const T* h = static_cast<const T*>(p.hidden);
  float v = 0.0f;
  if (c < p.width && end > begin) {
    if (p.mean) {
#pragma unroll 4
      for (long long r = begin + threadIdx.y; r < end; r += kPoolRowGroups) v += to_f32(h[r * p.ld + c]);
    } else if (threadIdx.y == 0) {
      v = to_f32(h[begin * p.ld + c]);
    }
  }
  partial[threadIdx.y][threadIdx.x] = v;
  __syncthreads();
  if (threadIdx.y != 0 || c >= p.width) return;
  float total = 0.0f;
#pragma unroll
  for (int y = 0; y < kPoolRowGroups; ++y) total += partial[y][threadIdx.x];
  if (p.mean && end > begin) total /= static_cast<float>(end - begin);
  p.out[b * p.width + c] = total;
}

}  // namespace

cudaError_t launch_bias_act(ElemType type, void* y, long long rows, long long cols, long long ld,
                            const float* bias, ActKind act, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  EMBD_DISPATCH_ELEM(type, T, {
    if (vec16_ok(y, cols, ld, static_cast<int>(sizeof(T)))) {
      bias_act_vec_kernel<T><<<grid_for(rows * cols / Vec16<T>::kN), kThreads, 0, stream>>>(
          static_cast<T*>(y), rows, cols, ld, bias, act);
    } else {
      bias_act_kernel<T><<<grid_for(rows * cols), kThreads, 0, stream>>>(static_cast<T*>(y), rows, cols, ld,
                                                                         bias, act);
    }
  });
  return cudaGetLastError();
}

cudaError_t launch_glu(const GluParams& p, cudaStream_t stream) {
  if (p.rows <= 0 || p.inner <= 0) return cudaSuccess;
  EMBD_DISPATCH_ELEM(p.type, T, {
    // The second half starts `inner` elements into each input row: aligned when inner is a
    // multiple of the vector width, which vec16_ok(in, inner, ...) also requires.
    constexpr int kBytes = static_cast<int>(sizeof(T));
    if (vec16_ok(p.in, p.inner, p.in_ld, kBytes) && vec16_ok(p.out, p.inner, p.out_ld, kBytes)) {
      glu_vec_kernel<T><<<grid_for(p.rows * p.inner / Vec16<T>::kN), kThreads, 0, stream>>>(p);
    } else {
      glu_kernel<T><<<grid_for(p.rows * p.inner), kThreads, 0, stream>>>(p);
    }
  });
  return cudaGetLastError();
}

cudaError_t launch_pool(const PoolParams& p, cudaStream_t stream) {
  if (p.batch <= 0 || p.width <= 0) return cudaSuccess;
  const long long col_blocks = (p.width + kPoolCols - 1) / kPoolCols;
  if (p.batch > 0x7fffffffLL || col_blocks > 65535) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(p.batch), static_cast<unsigned>(col_blocks));
  const dim3 block(kPoolCols, kPoolRowGroups);
  EMBD_DISPATCH_ELEM(p.type, T, pool_kernel<T><<<grid, block, 0, stream>>>(p));
  return cudaGetLastError();
}

}  // namespace embd::backend::cuda
