// The tensor-core varlen attention kernel for head_dim 64 in F16/BF16 (see attention_launch.h),
// in the FlashAttention-2 style, generic over how the two products run (a Tiles policy of
// attention_mma_tile.cuh: mma.sync on sm_80+, wgmma on Hopper). Kernel files only.
//
// Block = 4 warps, 64 queries of one (sequence, head); each warp owns 16 query rows and keeps
// scores S (16 x 64 keys) and the output O (16 x 64) in registers. The Q tile stays in shared
// memory; K/V tiles of 64 keys are double-buffered there with cp.async (rows past the sequence
// are zero-filled, never read). At the end the Q tile holds the block's output rows, which leave
// in 16-byte stores. A Q / V bias (AttentionParams::q_bias / v_bias) is added to Q as
// the policy keeps it (Tiles::load_q) and to the output. With a relative-position table
// (AttentionParams::relative_bias; the kRelative instance) the block copies its head's table into
// shared memory in base-2 units and adds an entry to each score instead of ALiBi
// (attend_tile_relative); no tile is skipped. The ALiBi instance is the code it was before.
//
// ALiBi tile skipping. In base-2 units a score is s(i,j) = c q_i.k_j - b|i-j| (c = scale log2 e,
// b = slope log2 e), so s(i,j) <= |c| |q_i| K - b|i-j| with K the largest key norm of the
// sequence (a pre-pass, attention_mma.cu), and the row maximum is at least s(i,i) = c q_i.k_i. A
// key j with |i-j| > D_i = (|c| |q_i| K - s(i,i) + 40) / b therefore has weight 2^(s - max) <
// 2^-40; the block visits the diagonal key tile first and then only tiles within max_i D_i of its
// rows. What is left out is below 8192 * 2^-40 = 7e-9 of a row's total weight: invisible in F32,
// and F16 rounds such weights to zero anyway. Heads with small slopes (long reach) see no change.
// Blocks run heads in reverse order so the heads with the longest reach start first, and the
// query blocks of one (sequence, head) back to back so its keys and values are read from memory
// once (short sequences are bound by that traffic).
#pragma once

#include <cstdint>

#include "attention_launch.h"
#include "attention_mma_tile.cuh"
#include "early_launch.cuh"

namespace embd::backend::cuda::attention_mma {

constexpr float kSkipLog2 = 40.0f;                // skipped weights are below 2^-kSkipLog2 of the row max
constexpr long long kSkipMinSeqlen = 3 * kBK;     // shorter: every tile is within reach anyway

// Key tiles a block visits, in order: the diagonal tile `diag`, then diag+1 .. hi, then
// diag-1 down to lo.
__device__ __forceinline__ int tile_at(int step, int diag, int hi) {
  return step <= hi - diag ? diag + step : diag - (step - (hi - diag));
}

template <typename T, typename Tiles, bool kRelative>
__global__ void __launch_bounds__(kThreads, Tiles::kMinBlocksPerSm) attention_tiles_kernel(AttentionParams p) {
  wait_for_previous_kernels();
  __shared__ __align__(Tiles::kTileAlign) T qs[Tiles::kTileElems];
  __shared__ __align__(Tiles::kTileAlign) T ks[2][Tiles::kTileElems];
  __shared__ __align__(Tiles::kTileAlign) T vs[2][Tiles::kTileElems];
  __shared__ float bias_s[2][kD];  // this head's Q and V bias (AttentionParams::q_bias / v_bias)

  // Grid: x = query block + qblocks * sequence, y = head (reversed). The query blocks of one
  // (sequence, head) are neighbours in launch order, so its K/V tiles come from L2 after the first.
  const long long qblocks = gridDim.x / p.batch;
  const long long seq = blockIdx.x / qblocks;
  const int qblock = static_cast<int>(blockIdx.x - seq * qblocks);
  const long long start = p.cu_seqlens[seq];
  const int len = static_cast<int>(p.cu_seqlens[seq + 1] - start);
  const int q0 = qblock * kBQ;
  if (q0 >= len) return;  // uniform over the block
  const int h = p.num_heads - 1 - static_cast<int>(blockIdx.y);
  const long long hidden = static_cast<long long>(p.num_heads) * kD;
  const T* qg = static_cast<const T*>(p.qkv) + start * p.qkv_ld + static_cast<long long>(h) * kD;
  const T* kg = qg + hidden;
  const T* vg = qg + 2 * hidden;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int g = lane >> 2;  // fragment row group

  const int diag = qblock;  // kBQ == kBK: the key tile of the block's rows
  load_tile<Tiles>(qs, qg, p.qkv_ld, q0, len);
  load_tile<Tiles>(ks[0], kg, p.qkv_ld, diag * kBK, len);
  load_tile<Tiles>(vs[0], vg, p.qkv_ld, diag * kBK, len);
  cp_async_commit();
  // The biases go through shared memory, loaded while the tiles are in flight: a short block
  // (a 128-token sequence has two key tiles) would otherwise wait on 32 scattered global loads
  // per thread. The first use is after a barrier below.
  static_assert(kThreads == 2 * kD, "one thread per bias element");
  const float* bias_src = threadIdx.x < kD ? p.q_bias : p.v_bias;
  if (bias_src != nullptr) bias_s[threadIdx.x / kD][threadIdx.x % kD] = bias_src[h * kD + threadIdx.x % kD];
  const float* qb = p.q_bias != nullptr ? bias_s[0] : nullptr;  // added to Q's fragments
  // The relative-position table of head h in base-2 units (first used after a barrier below).
  __shared__ float rel_s[kRelative ? 2 * kMaxAttentionRelativeReach + 1 : 1];
  if constexpr (kRelative) {
    const float* src = p.relative_bias + static_cast<long long>(h) * (2 * p.relative_reach + 1);
    for (int i = threadIdx.x; i <= 2 * p.relative_reach; i += kThreads) rel_s[i] = src[i] * kLog2e;
  }

  const float scale2 = p.scale * kLog2e;
  const float slope2 = p.alibi_slopes != nullptr ? p.alibi_slopes[h] * kLog2e : 0.0f;
  const int ntiles = (len + kBK - 1) / kBK;
  int lo = 0, hi = ntiles - 1;
  int prefetched = -1;  // the key tile already on its way into ks[1] / vs[1], if any
  if (p.key_norm_scratch != nullptr && slope2 > 0.0f && len > kSkipMinSeqlen) {
    // The reach below needs the Q and diagonal tiles in shared memory. While it waits for them,
    // the tile of step 1 is fetched as if every tile were within reach: the one after the diagonal
    // (before it for the last block). It is step 1's tile whenever step 1 exists (a reach of one
    // tile or more), so the block does not wait for memory twice before its first step.
    prefetched = tile_at(1, diag, ntiles - 1);  // ntiles >= 4 here
    load_tile<Tiles>(ks[1], kg, p.qkv_ld, prefetched * kBK, len);
    load_tile<Tiles>(vs[1], vg, p.qkv_ld, prefetched * kBK, len);
    cp_async_commit();
    // Reach D_i of each row (two threads per row, 32 columns each), then the block's maximum.
    __shared__ float reach[kThreads / 32];
    cp_async_wait<1>();
    __syncthreads();
    const int r = threadIdx.x >> 1;
    const int c0 = (threadIdx.x & 1) * 32;
    float qq = 0.0f, qk = 0.0f;
#pragma unroll
    for (int chunk = c0 / 8; chunk < c0 / 8 + 4; ++chunk) {  // 16-byte chunks of the two tiles
      float q[8], k[8];
      load_vec16(qs + Tiles::slot(r, chunk), q);
      load_vec16(ks[0] + Tiles::slot(r, chunk), k);
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const float qv = q[e] + (qb != nullptr ? qb[chunk * 8 + e] : 0.0f);
        qq = fmaf(qv, qv, qq);
        qk = fmaf(qv, k[e], qk);
      }
    }
    qq += __shfl_xor_sync(0xffffffffu, qq, 1);
    qk += __shfl_xor_sync(0xffffffffu, qk, 1);
    const float kmax = p.key_norm_scratch[seq * p.num_heads + h];
    float d = (fabsf(scale2) * sqrtf(qq) * kmax - scale2 * qk + kSkipLog2) / slope2;
    if (q0 + r >= len) d = 0.0f;           // padding row: no constraint
    if (!(d < 1e9f)) d = 1e9f;             // NaN or huge: visit everything
    d = warp_max(d);
    if ((threadIdx.x & 31) == 0) reach[threadIdx.x >> 5] = d;
    __syncthreads();
    const float dmax = fmaxf(fmaxf(reach[0], reach[1]), fmaxf(reach[2], reach[3]));
    // A tile t tiles away from the diagonal is at least (t - 1) * kBK + 1 positions from every row.
    const int reach_tiles = dmax < 1.0f ? 0 : static_cast<int>((dmax - 1.0f) / kBK) + 1;
    lo = max(0, diag - reach_tiles);
    hi = min(ntiles - 1, diag + reach_tiles);
  }
  const int nsteps = hi - lo + 1;
  const int qi0 = q0 + warp * 16 + g;  // this thread's two query rows: qi0 and qi0 + 8
  typename Tiles::QFragments qf;
  RowState st;
  st.reset();

  for (int step = 0; step < nsteps; ++step) {
    if (step + 1 < nsteps) {
      const int next = tile_at(step + 1, diag, hi);
      if (step > 0 || next != prefetched) {
        if (step == 0 && prefetched >= 0) cp_async_wait<0>();  // a wrong guess (not expected): let it land
        load_tile<Tiles>(ks[(step + 1) & 1], kg, p.qkv_ld, next * kBK, len);
        load_tile<Tiles>(vs[(step + 1) & 1], vg, p.qkv_ld, next * kBK, len);
        cp_async_commit();
      }
      cp_async_wait<1>();  // everything but the prefetch of the next tile has landed
    } else {
      cp_async_wait<0>();
    }
    Tiles::landed();
    __syncthreads();
    if (step == 0) Tiles::load_q(qf, qs, qb);
    const int tile = tile_at(step, diag, hi);
    const TileSide side = tile == diag ? TileSide::kDiagonal : tile < diag ? TileSide::kBefore : TileSide::kAfter;
    if constexpr (kRelative) {
      attend_tile_relative<T, Tiles>(qf, qs, ks[step & 1], vs[step & 1], tile * kBK, qi0, len, scale2,
                                     rel_s + p.relative_reach, p.relative_reach, step == 0, st);
    } else {
      attend_tile<T, Tiles>(qf, qs, ks[step & 1], vs[step & 1], tile * kBK, qi0, len, scale2, slope2, side, step == 0,
                            st);
    }
    __syncthreads();  // this buffer is refilled by the prefetch of the next iteration
  }

  T* og = static_cast<T*>(p.out) + start * p.out_ld + static_cast<long long>(h) * kD;
  const float* vb = p.v_bias != nullptr ? bias_s[1] : nullptr;  // out += V's bias
  // Rows that start 16-byte aligned (uniform over the grid) go out through the Q tile, free after
  // the last step's barrier, in 16-byte stores; otherwise each thread stores its column pairs:
  // one 32-bit store per pair when rows are 4-byte aligned, else two 16-bit stores.
  if ((reinterpret_cast<std::uintptr_t>(p.out) & 15u) == 0 && (p.out_ld & 7) == 0) {
    stage_rows<T, Tiles>(st, qs, vb);
    __syncthreads();
    copy_out_rows<T, Tiles>(qs, og, p.out_ld, q0, len);
    return;
  }
  const bool paired = (reinterpret_cast<std::uintptr_t>(p.out) & 3u) == 0 && (p.out_ld & 1) == 0;
  store_rows<T>(st, og, p.out_ld, qi0, len, vb, paired);
}

// Launches attention_tiles_kernel with the Tiles policy on `grid` (launch_attention_mma's), in
// p.type (F16 or BF16).
template <typename Tiles, bool kRelative>
cudaError_t launch_tiles_typed(const AttentionParams& p, dim3 grid, cudaStream_t stream) {
  if (p.type == ElemType::kF16) {
    return launch_maybe_early(attention_tiles_kernel<__half, Tiles, kRelative>, grid, kThreads, 0, stream,
                              p.early_launch, nullptr, p);
  }
  return launch_maybe_early(attention_tiles_kernel<__nv_bfloat16, Tiles, kRelative>, grid, kThreads, 0, stream,
                            p.early_launch, nullptr, p);
}

template <typename Tiles>
cudaError_t launch_tiles_kernel(const AttentionParams& p, dim3 grid, cudaStream_t stream) {
  return p.relative_bias != nullptr ? launch_tiles_typed<Tiles, true>(p, grid, stream)
                                    : launch_tiles_typed<Tiles, false>(p, grid, stream);
}

}  // namespace embd::backend::cuda::attention_mma
