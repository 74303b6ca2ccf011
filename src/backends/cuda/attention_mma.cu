// Launch of the tensor-core varlen attention kernel for head_dim 64 in F16/BF16 (see
// attention_launch.h and attention_mma_kernel.cuh): the key-norm pre-pass for ALiBi tile
// skipping, then the kernel with mma.sync (sm_80+), or with wgmma on Hopper
// (attention_wgmma_sm90a.cu, AttentionParams::wgmma).
#include <algorithm>
#include <cstdint>

#include "attention_launch.h"
#include "attention_mma_kernel.cuh"

namespace embd::backend::cuda {
namespace {

using namespace attention_mma;

constexpr int kNormThreads = 256;

// Largest key norm per (sequence, head): grid (batch, heads, chunks), one key row per thread,
// into out[b * heads + h] (zeroed before; norms are >= 0, so int ordering is float ordering).
template <typename T>
__global__ void __launch_bounds__(kNormThreads) key_norm_max_kernel(AttentionParams p) {
  const long long start = p.cu_seqlens[blockIdx.x];
  const int len = static_cast<int>(p.cu_seqlens[blockIdx.x + 1] - start);
  const int h = static_cast<int>(blockIdx.y);
  const T* kg = static_cast<const T*>(p.qkv) + start * p.qkv_ld +
                static_cast<long long>(p.num_heads + h) * kD;
  float best = 0.0f;
  for (int i = blockIdx.z * kNormThreads + threadIdx.x; i < len; i += gridDim.z * kNormThreads) {
    const T* row = kg + static_cast<long long>(i) * p.qkv_ld;
    float ss = 0.0f;
#pragma unroll
    for (int c = 0; c < kD; c += Vec16<T>::kN) {
      float v[Vec16<T>::kN];
      load_vec16(row + c, v);
#pragma unroll
      for (int e = 0; e < Vec16<T>::kN; ++e) ss = fmaf(v[e], v[e], ss);
    }
    best = fmaxf(best, ss);
  }
  best = warp_max(best);
  if ((threadIdx.x & 31) == 0 && best > 0.0f) {
    atomicMax(reinterpret_cast<int*>(p.key_norm_scratch) + blockIdx.x * p.num_heads + h,
              __float_as_int(sqrtf(best)));
  }
}

}  // namespace

bool attention_mma_applicable(const AttentionParams& p) {
  return (p.type == ElemType::kF16 || p.type == ElemType::kBF16) && p.head_dim == kD &&
         reinterpret_cast<std::uintptr_t>(p.qkv) % 16 == 0 && p.qkv_ld % 8 == 0;
}

cudaError_t launch_attention_mma(const AttentionParams& p, cudaStream_t stream) {
  if (p.batch <= 0 || p.max_seqlen <= 0) return cudaSuccess;
  if (!attention_mma_applicable(p) || !attention_relative_table_supported(p)) return cudaErrorInvalidValue;
  const long long qblocks = (p.max_seqlen + kBQ - 1) / kBQ;
  if (p.num_heads <= 0 || p.num_heads > 65535 || qblocks * p.batch > 0x7fffffffLL) {
    return cudaErrorInvalidValue;
  }
  AttentionParams q = p;
  if (p.alibi_slopes == nullptr || p.max_seqlen <= kSkipMinSeqlen) q.key_norm_scratch = nullptr;
  if (q.key_norm_scratch != nullptr) {
    const cudaError_t err = cudaMemsetAsync(q.key_norm_scratch, 0,
                                            static_cast<std::size_t>(p.batch * p.num_heads) * sizeof(float), stream);
    if (err != cudaSuccess) return err;
    const long long chunks = std::min<long long>((p.max_seqlen + kNormThreads - 1) / kNormThreads, 64);
    const dim3 norm_grid(static_cast<unsigned>(p.batch), static_cast<unsigned>(p.num_heads),
                         static_cast<unsigned>(chunks));
    if (p.type == ElemType::kF16) {
      key_norm_max_kernel<__half><<<norm_grid, kNormThreads, 0, stream>>>(q);
    } else {
      key_norm_max_kernel<__nv_bfloat16><<<norm_grid, kNormThreads, 0, stream>>>(q);
    }
  }
  const dim3 grid(static_cast<unsigned>(qblocks * p.batch), static_cast<unsigned>(p.num_heads));
  return p.wgmma ? launch_attention_wgmma(q, grid, stream) : launch_tiles_kernel<MmaSyncTiles>(q, grid, stream);
}

}  // namespace embd::backend::cuda
