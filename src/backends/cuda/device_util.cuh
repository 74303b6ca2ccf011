// Device-side helpers for the CUDA kernels: F32 <-> storage conversions (round to nearest even),
// activations in F32, warp/block reductions and the dtype dispatch macro. Kernel files only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "launch_common.h"

namespace embd::backend::cuda {

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T from_f32(float x);
template <>
__device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <>
__device__ __forceinline__ __half from_f32<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// Exact GELU (erf form), as in BERT / JinaBERT reference code; not the tanh approximation.
__device__ __forceinline__ float gelu_erf(float x) {
  return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}

__device__ __forceinline__ float activate(float x, ActKind act) {
  switch (act) {
    case ActKind::kGeluErf: return gelu_erf(x);
    case ActKind::kRelu: return x > 0.0f ? x : 0.0f;
    case ActKind::kNone: break;
  }
  return x;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the whole block (blockDim.x a multiple of 32, at most 1024); every thread gets the
// result. `scratch` is 32 floats of shared memory; the call begins and ends with a barrier so
// it may be reused back to back.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < warps; ++w) total += scratch[w];
  __syncthreads();
  return total;
}

}  // namespace embd::backend::cuda

// Runs the statement list with `T` bound to the storage type of ElemType `et`.
#define EMBD_DISPATCH_ELEM(et, T, ...)                                    \
  switch (et) {                                                           \
    case ::embd::backend::cuda::ElemType::kF32: {                         \
      using T = float;                                                    \
      __VA_ARGS__;                                                        \
    } break;                                                              \
    case ::embd::backend::cuda::ElemType::kF16: {                         \
      using T = __half;                                                   \
      __VA_ARGS__;                                                        \
    } break;                                                              \
    case ::embd::backend::cuda::ElemType::kBF16: {                        \
      using T = __nv_bfloat16;                                            \
      __VA_ARGS__;                                                        \
    } break;                                                              \
  }
