// The pieces of the tensor-core attention kernels (attention_mma_kernel.cuh), for head_dim 64 in
// F16/BF16: cp.async tile loads into shared tiles, the Q fragments of a warp's 16 query
// rows, one 64-key step of FlashAttention-2 (S = Q K^T, scale + ALiBi or a relative-position
// table + mask in F32, online softmax in base 2, O += P V with P rounded to the input dtype, sums
// in F32), and the output rows. The two products come from a Tiles policy: MmaSyncTiles here
// (mma.sync.m16n8k16, sm_80+), WgmmaTiles in attention_wgmma_sm90a.cu (Hopper's wgmma).
//
// A block is 4 warps over 64 query rows; warp w owns rows 16w .. 16w+15, and each thread two of
// them (g and g + 8, g = lane / 4) and column pairs 2t, 2t+1 of every 8-column slice (t = lane % 4).
// Kernel files only.
#pragma once

#include <cstdint>
#include <cstring>

#include "device_util.cuh"

namespace embd::backend::cuda::attention_mma {

constexpr int kD = 64;
constexpr int kBQ = 64;
constexpr int kBK = 64;
constexpr int kThreads = 128;
constexpr int kStride = kD + 8;  // 144-byte rows: ldmatrix row addresses hit distinct banks
constexpr int kTileElems = kBK * kStride;
constexpr float kLog2e = 1.4426950408889634f;

// 16-byte async copy global -> shared; src_bytes 0 zero-fills the destination (src unread).
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(src_bytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(std::uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p))
               : "memory");
}
__device__ __forceinline__ void ldmatrix_x4_trans(std::uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p))
               : "memory");
}

// d += a * b for one m16n8k16 tile, F32 accumulators.
template <typename T>
__device__ __forceinline__ void mma_16816(float (&d)[4], const std::uint32_t (&a)[4], std::uint32_t b0,
                                          std::uint32_t b1);
template <>
__device__ __forceinline__ void mma_16816<__half>(float (&d)[4], const std::uint32_t (&a)[4],
                                                  std::uint32_t b0, std::uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma_16816<__nv_bfloat16>(float (&d)[4], const std::uint32_t (&a)[4],
                                                         std::uint32_t b0, std::uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// 2^x on the SFU, results below 2^-126 flushed to zero: exp2f's denormal-safe form costs three more
// instructions per score, for softmax weights far below F16/BF16 rounding of P anyway.
__device__ __forceinline__ float exp2_ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// Copies rows [row0, row0 + 64) x 64 columns of a head (src = its first row and column) into a
// shared tile laid out as Tiles keeps it (16-byte chunk `chunk` of row r at element
// Tiles::slot(r, chunk)); rows at or past `len` are zero-filled. A thread copies chunk
// threadIdx.x % 8 of rows threadIdx.x / 8 + 16 i: its chunk and, in both layouts, its place in a row
// are the same for every i, so each copy is a pointer step instead of a row's address math.
template <typename Tiles, typename T>
__device__ __forceinline__ void load_tile(T* dst, const T* src, long long ld, int row0, int len) {
  constexpr int kRowsPerPass = kThreads / 8;
  static_assert(kRowsPerPass % 8 == 0, "rows r and r + kRowsPerPass share their swizzle phase");
  const int chunk = threadIdx.x & 7;
  const int r0 = threadIdx.x >> 3;
  const int rows_left = len - row0 - r0;  // copies i with kRowsPerPass * i < rows_left are in the sequence
  const T* g = src + static_cast<long long>(row0 + r0) * ld + chunk * 8;
  const long long step = kRowsPerPass * ld;
  T* d = dst + Tiles::slot(r0, chunk);
  constexpr int kStep = Tiles::slot(kRowsPerPass, 0) - Tiles::slot(0, 0);
#pragma unroll
  for (int i = 0; i < 64 / kRowsPerPass; ++i) {
    const bool valid = kRowsPerPass * i < rows_left;
    cp_async_16(d + i * kStep, valid ? g : src, valid ? 16 : 0);  // src: readable, not read
    g += step;
  }
}

// The running state of a thread's two query rows: output accumulators, row maxima and sums
// (base 2).
struct RowState {
  float o[8][4];
  float m[2];
  float l[2];

  __device__ __forceinline__ void reset() {
#pragma unroll
    for (int n = 0; n < 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    m[0] = m[1] = -INFINITY;
    l[0] = l[1] = 0.0f;
  }
};

// The A fragments of this warp's 16 query rows of the shared Q tile `qs`. With `qb` (this head's
// Q bias, 64 floats, may be in shared memory) each value gets its bias, rounded to T as a biased
// projection would have stored it.
template <typename T>
__device__ __forceinline__ void load_q_fragments(std::uint32_t (&qf)[4][4], const T* qs, const float* qb) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int t = lane & 3;
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    ldmatrix_x4(qf[kk], &qs[(warp * 16 + (lane & 15)) * kStride + kk * 16 + (lane >> 4) * 8]);
    if (qb != nullptr) {
      // Fragment j holds columns kk*16 + 2t, 2t+1 (j = 0, 1) or + 8 (j = 2, 3).
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int col = kk * 16 + (j >= 2 ? 8 : 0) + 2 * t;
        T pair[2];
        memcpy(pair, &qf[kk][j], 4);
        qf[kk][j] = pack2<T>(to_f32(pair[0]) + qb[col], to_f32(pair[1]) + qb[col + 1]);
      }
    }
  }
}

// The part of row i minus key j that is constant across tiles for score s[n][e] of a thread: row
// (8 (e >> 1)) and key (8 n + (e & 1)) offsets within its fragment, relative to the thread's first
// row and first key column (see attend_tile).
__device__ __forceinline__ float fragment_distance(int n, int e) {
  return static_cast<float>(8 * (e >> 1) - 8 * n - (e & 1));
}

// Where a key tile lies against the block's 64 query rows (kBQ == kBK, tiles aligned): on the
// diagonal, or wholly before or after the rows, where |i - j| has one sign for the whole tile.
enum class TileSide : int { kDiagonal, kBefore, kAfter };

// The online-softmax step of one 64-key tile for this thread's rows qi0 and qi0 + 8, given the raw
// scores s = Q K^T of keys kbase .. kbase+63: s * scale2 - slope2 |i - j| (keys at or past `len`
// masked), new row maxima (O and l rescaled where they moved), and P = 2^(s - max) rounded to T in
// p, as the A fragments of the P V product (key step kk in p[kk]). The tile must hold at least one
// key below `len` (row maxima stay finite). `first`: the first tile of these rows.
template <typename T>
__device__ __forceinline__ void softmax_step(float (&s)[8][4], std::uint32_t (&p)[4][4], int kbase, int qi0, int len,
                                             float scale2, float slope2, TileSide side, bool first, RowState& st) {
  const int t = threadIdx.x & 3;
  // Scale and ALiBi. Row i minus key j is (qi0 - kbase - 2t) + fragment_distance(n, e): one
  // int -> float conversion per tile, the rest constants (exact in F32 while |i - j| < 2^24). The
  // conversions and the mask are what the SFU and the integer pipe would otherwise spend per score.
  const float d0 = static_cast<float>(qi0 - kbase - 2 * t);
  if (side == TileSide::kDiagonal) {
#pragma unroll
    for (int n = 0; n < 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float dist = fabsf(d0 + fragment_distance(n, e));
        s[n][e] = fmaf(s[n][e], scale2, -slope2 * dist);
      }
    }
  } else {
    // Off the diagonal |i - j| = +-(d0 + c) for the whole tile: the bias is one FMA of the
    // constant c per score (two instructions a score instead of three).
    const float k = side == TileSide::kBefore ? -slope2 : slope2;
    const float b0 = k * d0;
#pragma unroll
    for (int n = 0; n < 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[n][e] = fmaf(s[n][e], scale2, fmaf(fragment_distance(n, e), k, b0));
      }
    }
  }
  if (kbase + kBK > len) {  // the sequence ends in this tile: mask keys j >= len
    const int limit = len - kbase - 2 * t;
#pragma unroll
    for (int n = 0; n < 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        if (8 * n + (e & 1) >= limit) s[n][e] = -INFINITY;
      }
    }
  }
  // The online-softmax update (rows g and g + 8).
  float mx[2] = {st.m[0], st.m[1]};
#pragma unroll
  for (int n = 0; n < 8; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) mx[e >> 1] = fmaxf(mx[e >> 1], s[n][e]);
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
  }
  // Rescale O and l only where a row maximum moved. The diagonal tile comes first and ALiBi lowers
  // scores with distance, so after it the maxima rarely move: the warp then skips 34 multiplies.
  if (!first && __any_sync(0xffffffffu, mx[0] != st.m[0] || mx[1] != st.m[1])) {
    float alpha[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      alpha[r] = exp2_ftz(st.m[r] - mx[r]);  // finite mx: key kbase < len is in this tile
      st.l[r] *= alpha[r];
    }
#pragma unroll
    for (int n = 0; n < 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) st.o[n][e] *= alpha[e >> 1];
    }
  }
  st.m[0] = mx[0];
  st.m[1] = mx[1];
#pragma unroll
  for (int n = 0; n < 8; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      s[n][e] = exp2_ftz(s[n][e] - st.m[e >> 1]);
      st.l[e >> 1] += s[n][e];
    }
  }
  // Score tiles 2kk and 2kk+1 form the A fragment of key step kk (the accumulator layout of
  // m16n8 tiles read as the A layout of m16n8k16, which wgmma's register A shares per warp).
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    p[kk][0] = pack2<T>(s[2 * kk][0], s[2 * kk][1]);
    p[kk][1] = pack2<T>(s[2 * kk][2], s[2 * kk][3]);
    p[kk][2] = pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
    p[kk][3] = pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
  }
}

// The tensor-core products with mma.sync.m16n8k16 (sm_80+): K and V tiles in padded shared rows
// (kStride), read with ldmatrix. Each warp multiplies its own 16 query rows.
struct MmaSyncTiles {
  static constexpr int kTileElems = attention_mma::kTileElems;
  static constexpr int kTileAlign = 128;
  static constexpr int kMinBlocksPerSm = 3;  // 168 registers, no spills (BENCHMARKS.md, run 85)
  // What a thread keeps of the Q tile: the A fragments of its warp's 16 rows.
  using QFragments = std::uint32_t[4][4];

  // Where 16-byte chunk `chunk` of tile row r starts (elements): padded rows of kStride.
  __host__ __device__ __forceinline__ static constexpr int slot(int r, int chunk) { return r * kStride + chunk * 8; }
  // After this thread's copies into a tile have landed, before the barrier that publishes them.
  __device__ __forceinline__ static void landed() {}
  // Once the Q tile has landed (every thread, after a barrier): this thread's Q, with `qb`.
  template <typename T>
  __device__ __forceinline__ static void load_q(QFragments& qf, T* qs, const float* qb) {
    load_q_fragments<T>(qf, qs, qb);
  }

  // s = Q K^T for this warp's 16 rows and the 64 keys of kt.
  template <typename T>
  __device__ __forceinline__ static void scores(float (&s)[8][4], const QFragments& qf, const T* /*qs*/,
                                                const T* kt) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int n = 0; n < 8; ++n) {
      s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < 4; kk += 2) {
        std::uint32_t b[4];
        ldmatrix_x4(b, &kt[(n * 8 + (lane & 7)) * kStride + kk * 16 + (lane >> 3) * 8]);
        mma_16816<T>(s[n], qf[kk], b[0], b[1]);
        mma_16816<T>(s[n], qf[kk + 1], b[2], b[3]);
      }
    }
  }

  // o += P V for this warp's 16 rows (p from softmax_step) and the 64 keys of vt.
  template <typename T>
  __device__ __forceinline__ static void accumulate(float (&o)[8][4], const std::uint32_t (&p)[4][4], const T* vt) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
#pragma unroll
      for (int n = 0; n < 8; n += 2) {
        std::uint32_t b[4];
        ldmatrix_x4_trans(b, &vt[(kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kStride + n * 8 +
                                 (lane >> 4) * 8]);
        mma_16816<T>(o[n], p[kk], b[0], b[1]);
        mma_16816<T>(o[n + 1], p[kk], b[2], b[3]);
      }
    }
  }
};

// Scales raw scores s = Q K^T of keys kbase .. kbase+63 for this thread's rows qi0 and qi0 + 8 and
// adds a relative-position table: score (i, j) becomes s * scale2 + rel[clamp(j - i, -reach,
// reach)], `rel` centred on distance 0 and in base-2 units (usually in shared memory).
__device__ __forceinline__ void scale_add_relative(float (&s)[8][4], int kbase, int qi0, float scale2, const float* rel,
                                                   int reach) {
  const int r0 = kbase + 2 * (threadIdx.x & 3) - qi0;  // j - i of this thread's first score
#pragma unroll
  for (int n = 0; n < 8; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int r = r0 + 8 * n + (e & 1) - 8 * (e >> 1);
      s[n][e] = fmaf(s[n][e], scale2, rel[min(max(r, -reach), reach)]);
    }
  }
}

// One step of FlashAttention-2 over the 64 keys kbase .. kbase+63 (shared tiles qs, kt, vt laid
// out as Tiles keeps them) for this thread's rows qi0 and qi0 + 8: S = Q K^T, softmax_step, O += P V.
template <typename T, typename Tiles>
__device__ __forceinline__ void attend_tile(const typename Tiles::QFragments& qf, const T* qs, const T* kt,
                                            const T* vt, int kbase, int qi0, int len, float scale2, float slope2,
                                            TileSide side, bool first, RowState& st) {
  float s[8][4];
  Tiles::template scores<T>(s, qf, qs, kt);
  std::uint32_t p[4][4];
  softmax_step<T>(s, p, kbase, qi0, len, scale2, slope2, side, first, st);
  Tiles::template accumulate<T>(st.o, p, vt);
}

// attend_tile with a relative-position table (scale_add_relative) instead of ALiBi: softmax_step
// then gets scores already scaled and biased (scale 1, no slope: it adds exactly 0).
template <typename T, typename Tiles>
__device__ __forceinline__ void attend_tile_relative(const typename Tiles::QFragments& qf, const T* qs, const T* kt,
                                                     const T* vt, int kbase, int qi0, int len, float scale2,
                                                     const float* rel, int reach, bool first, RowState& st) {
  float s[8][4];
  Tiles::template scores<T>(s, qf, qs, kt);
  scale_add_relative(s, kbase, qi0, scale2, rel, reach);
  std::uint32_t p[4][4];
  softmax_step<T>(s, p, kbase, qi0, len, 1.0f, 0.0f, TileSide::kAfter, first, st);
  Tiles::template accumulate<T>(st.o, p, vt);
}

// Sums the softmax total l of row r (0: qi0, 1: qi0 + 8) of this thread over the four lanes that
// hold the row's columns. Every lane must call it.
__device__ __forceinline__ void sum_row_total(RowState& st, int r) {
  st.l[r] += __shfl_xor_sync(0xffffffffu, st.l[r], 1);
  st.l[r] += __shfl_xor_sync(0xffffffffu, st.l[r], 2);
}

// Output columns col and col + 1 of row r, fragment n: O / l (inv = 1 / l) + `vb` (this head's V
// bias, or null).
__device__ __forceinline__ float2 output_pair(const RowState& st, int r, int n, int col, float inv,
                                              const float* vb) {
  const float b0 = vb != nullptr ? vb[col] : 0.0f;
  const float b1 = vb != nullptr ? vb[col + 1] : 0.0f;
  return make_float2(fmaf(st.o[n][2 * r], inv, b0), fmaf(st.o[n][2 * r + 1], inv, b1));
}

// This thread's rows of the output (output_pair) as pairs of T, written into `tile` (the block's
// 64 output rows, laid out as Tiles keeps a tile; row r of the tile is query q0 + r), for
// copy_out_rows to store. Call after the last step's barrier (the tile is free).
template <typename T, typename Tiles>
__device__ __forceinline__ void stage_rows(RowState& st, T* tile, const float* vb) {
  const int lane = threadIdx.x & 31;
  const int t = lane & 3;
  const int r0 = (threadIdx.x >> 5) * 16 + (lane >> 2);
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    sum_row_total(st, r);
    const float inv = 1.0f / st.l[r];
    const int row = r0 + r * 8;
#pragma unroll
    for (int n = 0; n < 8; ++n) {
      const float2 y = output_pair(st, r, n, n * 8 + 2 * t, inv, vb);
      *reinterpret_cast<std::uint32_t*>(tile + Tiles::slot(row, n) + 2 * t) = pack2<T>(y.x, y.y);
    }
  }
}

// Stores the staged rows of queries q0 .. q0 + 63 below `len` to og (the head's first output row
// and column, row stride ld, every row 16-byte aligned) in 16-byte pieces: a warp writes four whole
// 128-byte rows per instruction, where the fragments' own stores covered 16 bytes of eight rows.
// Call after a barrier that follows stage_rows.
template <typename T, typename Tiles>
__device__ __forceinline__ void copy_out_rows(const T* tile, T* og, long long ld, int q0, int len) {
  constexpr int kRowsPerPass = kThreads / 8;
  const int chunk = threadIdx.x & 7;
  const int r0 = threadIdx.x >> 3;
#pragma unroll
  for (int i = 0; i < 64 / kRowsPerPass; ++i) {
    const int r = r0 + i * kRowsPerPass;
    if (q0 + r >= len) break;  // rows only grow with i
    *reinterpret_cast<uint4*>(og + static_cast<long long>(q0 + r) * ld + chunk * 8) =
        *reinterpret_cast<const uint4*>(tile + Tiles::slot(r, chunk));
  }
}

// Writes this thread's rows qi0 and qi0 + 8 (those below `len`) of the output (output_pair) to
// og (the head's first output row and column, row stride ld). `paired`: every row start is 4-byte
// aligned, so a column pair is one 32-bit store.
template <typename T>
__device__ __forceinline__ void store_rows(RowState& st, T* og, long long ld, int qi0, int len, const float* vb,
                                           bool paired) {
  const int t = threadIdx.x & 3;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    sum_row_total(st, r);
    const int i = qi0 + r * 8;
    if (i >= len) continue;
    const float inv = 1.0f / st.l[r];
    T* row = og + static_cast<long long>(i) * ld;
#pragma unroll
    for (int n = 0; n < 8; ++n) {
      const int col = n * 8 + 2 * t;
      const float2 y = output_pair(st, r, n, col, inv, vb);
      if (paired) {
        *reinterpret_cast<std::uint32_t*>(row + col) = pack2<T>(y.x, y.y);
      } else {
        row[col] = from_f32<T>(y.x);
        row[col + 1] = from_f32<T>(y.y);
      }
    }
  }
}

}  // namespace embd::backend::cuda::attention_mma
