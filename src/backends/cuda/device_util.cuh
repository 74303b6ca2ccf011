// Device-side helpers for the CUDA kernels: F32 <-> storage conversions (round to nearest even),
// 16-byte vector loads/stores, float pairs packed to 16 bits, shared-memory addresses, activations
// in F32, warp/block reductions and the dtype dispatch macro. Kernel files only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>

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

// Elements of T in one 16-byte vector (4 for F32, 8 for F16/BF16).
template <typename T>
struct Vec16 {
  static constexpr int kN = 16 / static_cast<int>(sizeof(T));
};

__host__ __device__ __forceinline__ bool aligned16(const void* p) {
  return (reinterpret_cast<std::uintptr_t>(p) & 15u) == 0;
}

// Whether a [rows, cols] matrix at `p` with row stride `ld` (elements of `elem_bytes`) can be
// walked in 16-byte vectors: the pointer is 16-byte aligned and cols and ld are multiples of the
// vector width, so every vector starts 16-byte aligned and stays inside one row.
__host__ __device__ __forceinline__ bool vec16_ok(const void* p, long long cols, long long ld,
                                                  int elem_bytes) {
  const long long n = 16 / elem_bytes;
  return aligned16(p) && cols % n == 0 && ld % n == 0;
}

// Loads 16 bytes (Vec16<T>::kN elements) at the 16-byte aligned `p` as F32.
template <typename T>
__device__ __forceinline__ void load_vec16(const T* p, float (&out)[Vec16<T>::kN]) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
  for (int i = 0; i < Vec16<T>::kN; ++i) out[i] = to_f32(e[i]);
}

// Rounds Vec16<T>::kN F32 values to T and stores them as one 16-byte vector at the aligned `p`.
template <typename T>
__device__ __forceinline__ void store_vec16(T* p, const float (&in)[Vec16<T>::kN]) {
  uint4 raw;
  T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
  for (int i = 0; i < Vec16<T>::kN; ++i) e[i] = from_f32<T>(in[i]);
  *reinterpret_cast<uint4*>(p) = raw;
}

// 4 consecutive elements as F32 / from F32 (`p` aligned to 4 elements: 16 bytes for F32, 8 for
// F16/BF16): one vector access per call.
__device__ __forceinline__ void load4(const float* p, float (&o)[4]) {
  const float4 v = *reinterpret_cast<const float4*>(p);
  o[0] = v.x, o[1] = v.y, o[2] = v.z, o[3] = v.w;
}
template <typename T>
__device__ __forceinline__ void load4(const T* p, float (&o)[4]) {
  const uint2 raw = *reinterpret_cast<const uint2*>(p);
  const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) o[i] = to_f32(e[i]);
}
__device__ __forceinline__ void store4(float* p, const float (&v)[4]) {
  *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
}
template <typename T>
__device__ __forceinline__ void store4(T* p, const float (&v)[4]) {
  uint2 raw;
  T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) e[i] = from_f32<T>(v[i]);
  *reinterpret_cast<uint2*>(p) = raw;
}

// Two floats rounded to a 16-bit T and packed into one register, `lo` in the low half (the lower
// column): one 32-bit store writes both.
template <typename T>
__device__ __forceinline__ std::uint32_t pack2(float lo, float hi);
template <>
__device__ __forceinline__ std::uint32_t pack2<__half>(float lo, float hi) {
  const __half2 v = __floats2half2_rn(lo, hi);
  std::uint32_t u;
  memcpy(&u, &v, 4);
  return u;
}
template <>
__device__ __forceinline__ std::uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  std::uint32_t u;
  memcpy(&u, &v, 4);
  return u;
}

// The inverse of pack2: two 16-bit T from one register, as F32 (low half first).
template <typename T>
__device__ __forceinline__ float2 unpack2(std::uint32_t u);
template <>
__device__ __forceinline__ float2 unpack2<__half>(std::uint32_t u) {
  __half2 v;
  memcpy(&v, &u, 4);
  return __half22float2(v);
}
template <>
__device__ __forceinline__ float2 unpack2<__nv_bfloat16>(std::uint32_t u) {
  __nv_bfloat162 v;
  memcpy(&v, &u, 4);
  return __bfloat1622float2(v);
}

// The shared-window address of a pointer into shared memory, as PTX's shared-space operands take it.
__device__ __forceinline__ std::uint32_t smem_addr(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
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
