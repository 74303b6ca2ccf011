// The portable varlen attention kernel (see attention_launch.h): F32 math on CUDA cores for any
// dtype and head dimension 1..128. Used for F32 models, head dims other than 64, and unaligned
// inputs. The kernel is instantiated per bucket D in {8, 16, 32, 64, 128}; the runtime head_dim
// d <= D is handled by zero-filling columns d..D-1 of the staged Q/K/V tiles (they add 0 to every
// dot product) and storing only columns below d.
//
// Block = 4 warps x 4 queries (16 queries of one sequence and head). Per key tile (32 keys,
// staged in shared memory as F32), lane j scores key j against the warp's 4 queries, the warp
// updates each query's running max / sum (online softmax, base-2 exponentials), and lanes then
// own output columns d = lane + 32 e while accumulating P V.
#include <cmath>

#include "attention_launch.h"
#include "device_util.cuh"

namespace embd::backend::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kQPerWarp = 4;
constexpr int kBQ = kWarps * kQPerWarp;  // queries per block
constexpr int kBK = 32;                  // keys per tile (one per lane)
constexpr float kLog2e = 1.4426950408889634f;

// kRelative: the instance that adds AttentionParams::relative_bias (the ALiBi one stays free of it).
template <typename T, int D, bool kRelative>
__global__ void __launch_bounds__(kWarps * 32) attention_simple_kernel(AttentionParams p) {
  const int d = p.head_dim;  // 1 <= d <= D (checked by the launcher)
  constexpr int kPer = (D + 31) / 32;  // output columns per lane
  constexpr int kKStride = D + 4;      // float4-aligned rows, conflict-free lane-per-row reads
  __shared__ __align__(16) float qs[kBQ][D];
  __shared__ __align__(16) float ks[kBK][kKStride];
  __shared__ __align__(16) float vs[kBK][D];

  const long long start = p.cu_seqlens[blockIdx.x];
  const int len = static_cast<int>(p.cu_seqlens[blockIdx.x + 1] - start);
  const int q0 = static_cast<int>(blockIdx.y) * kBQ;
  if (q0 >= len) return;  // uniform over the block: no barrier is skipped by part of it
  const int h = static_cast<int>(blockIdx.z);
  const long long hidden = static_cast<long long>(p.num_heads) * d;
  const T* qg = static_cast<const T*>(p.qkv) + start * p.qkv_ld + static_cast<long long>(h) * d;
  const T* kg = qg + hidden;
  const T* vg = qg + 2 * hidden;
  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;

  for (int idx = tid; idx < kBQ * D; idx += kWarps * 32) {
    const int r = idx / D;
    const int c = idx - r * D;
    const int i = q0 + r;
    const float bias = (p.q_bias != nullptr && c < d) ? p.q_bias[h * d + c] : 0.0f;
    qs[r][c] = (i < len && c < d) ? to_f32(qg[static_cast<long long>(i) * p.qkv_ld + c]) + bias : 0.0f;
  }

  const float scale2 = p.scale * kLog2e;
  const float slope2 = p.alibi_slopes != nullptr ? p.alibi_slopes[h] * kLog2e : 0.0f;
  // This head's relative-position table, centred on distance 0 (read through L1: 2R + 1 floats).
  const float* rel = kRelative ? p.relative_bias + h * (2 * p.relative_reach + 1) + p.relative_reach : nullptr;
  float m[kQPerWarp], l[kQPerWarp], acc[kQPerWarp][kPer];
#pragma unroll
  for (int qi = 0; qi < kQPerWarp; ++qi) {
    m[qi] = -INFINITY;
    l[qi] = 0.0f;
#pragma unroll
    for (int e = 0; e < kPer; ++e) acc[qi][e] = 0.0f;
  }

  for (int k0 = 0; k0 < len; k0 += kBK) {
    __syncthreads();  // the previous tile is consumed (and, first time, nothing is pending)
    for (int idx = tid; idx < kBK * D; idx += kWarps * 32) {
      const int r = idx / D;
      const int c = idx - r * D;
      const int j = k0 + r;
      const bool valid = j < len && c < d;
      const long long off = static_cast<long long>(j) * p.qkv_ld + c;
      ks[r][c] = valid ? to_f32(kg[off]) : 0.0f;
      vs[r][c] = valid ? to_f32(vg[off]) : 0.0f;
    }
    __syncthreads();

    float s[kQPerWarp];
#pragma unroll
    for (int qi = 0; qi < kQPerWarp; ++qi) s[qi] = 0.0f;
#pragma unroll 4
    for (int c = 0; c < D; c += 4) {
      const float4 kv = *reinterpret_cast<const float4*>(&ks[lane][c]);
#pragma unroll
      for (int qi = 0; qi < kQPerWarp; ++qi) {
        const float4 qv = *reinterpret_cast<const float4*>(&qs[warp * kQPerWarp + qi][c]);
        s[qi] += qv.x * kv.x + qv.y * kv.y + qv.z * kv.z + qv.w * kv.w;
      }
    }
    const int j = k0 + lane;
    float pr[kQPerWarp];
#pragma unroll
    for (int qi = 0; qi < kQPerWarp; ++qi) {
      const int i = q0 + warp * kQPerWarp + qi;
      float v = s[qi] * scale2 - slope2 * fabsf(static_cast<float>(i - j));
      if constexpr (kRelative) v += rel[min(max(j - i, -p.relative_reach), p.relative_reach)] * kLog2e;
      if (j >= len) v = -INFINITY;
      const float m_new = fmaxf(m[qi], warp_max(v));  // finite: key k0 < len is in the tile
      const float alpha = exp2f(m[qi] - m_new);
      pr[qi] = exp2f(v - m_new);
      l[qi] = l[qi] * alpha + warp_sum(pr[qi]);
      m[qi] = m_new;
#pragma unroll
      for (int e = 0; e < kPer; ++e) acc[qi][e] *= alpha;
    }
    for (int jj = 0; jj < kBK; ++jj) {
      float vv[kPer];
#pragma unroll
      for (int e = 0; e < kPer; ++e) {
        const int col = lane + 32 * e;
        vv[e] = col < D ? vs[jj][col] : 0.0f;
      }
#pragma unroll
      for (int qi = 0; qi < kQPerWarp; ++qi) {
        const float pj = __shfl_sync(0xffffffffu, pr[qi], jj);
#pragma unroll
        for (int e = 0; e < kPer; ++e) acc[qi][e] += pj * vv[e];
      }
    }
  }

  T* og = static_cast<T*>(p.out) + start * p.out_ld + static_cast<long long>(h) * d;
#pragma unroll
  for (int qi = 0; qi < kQPerWarp; ++qi) {
    const int i = q0 + warp * kQPerWarp + qi;
    if (i >= len) continue;
    const float inv = 1.0f / l[qi];
#pragma unroll
    for (int e = 0; e < kPer; ++e) {
      const int col = lane + 32 * e;
      if (col >= d) continue;
      const float bias = p.v_bias != nullptr ? p.v_bias[h * d + col] : 0.0f;
      og[static_cast<long long>(i) * p.out_ld + col] = from_f32<T>(acc[qi][e] * inv + bias);
    }
  }
}

template <typename T, bool kRelative>
cudaError_t launch_simple_typed(const AttentionParams& p, dim3 grid, cudaStream_t stream) {
  const dim3 block(kWarps * 32);
  // The smallest bucket holding head_dim (validated to 1..kMaxAttentionHeadDim by the caller).
  if (p.head_dim <= 8) {
    attention_simple_kernel<T, 8, kRelative><<<grid, block, 0, stream>>>(p);
  } else if (p.head_dim <= 16) {
    attention_simple_kernel<T, 16, kRelative><<<grid, block, 0, stream>>>(p);
  } else if (p.head_dim <= 32) {
    attention_simple_kernel<T, 32, kRelative><<<grid, block, 0, stream>>>(p);
  } else if (p.head_dim <= 64) {
    attention_simple_kernel<T, 64, kRelative><<<grid, block, 0, stream>>>(p);
  } else {
    attention_simple_kernel<T, 128, kRelative><<<grid, block, 0, stream>>>(p);
  }
  return cudaGetLastError();
}

}  // namespace

bool attention_head_dim_supported(int head_dim) {
  return head_dim >= 1 && head_dim <= kMaxAttentionHeadDim;
}

bool attention_relative_table_supported(const AttentionParams& p) {
  return p.relative_bias == nullptr || (p.relative_reach >= 1 && p.relative_reach <= kMaxAttentionRelativeReach);
}

cudaError_t launch_attention_simple(const AttentionParams& p, cudaStream_t stream) {
  if (p.batch <= 0 || p.max_seqlen <= 0) return cudaSuccess;
  if (!attention_head_dim_supported(p.head_dim) || !attention_relative_table_supported(p)) {
    return cudaErrorInvalidValue;
  }
  const long long qblocks = (p.max_seqlen + kBQ - 1) / kBQ;
  if (p.batch > 0x7fffffffLL || qblocks > 65535 || p.num_heads <= 0 || p.num_heads > 65535) {
    return cudaErrorInvalidValue;
  }
  const dim3 grid(static_cast<unsigned>(p.batch), static_cast<unsigned>(qblocks),
                  static_cast<unsigned>(p.num_heads));
  cudaError_t err = cudaErrorInvalidValue;
  if (p.relative_bias != nullptr) {
    EMBD_DISPATCH_ELEM(p.type, T, err = (launch_simple_typed<T, true>(p, grid, stream)));
  } else {
    EMBD_DISPATCH_ELEM(p.type, T, err = (launch_simple_typed<T, false>(p, grid, stream)));
  }
  return err;
}

}  // namespace embd::backend::cuda
