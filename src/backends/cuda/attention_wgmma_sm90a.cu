// The tensor-core varlen attention kernel (attention_mma_kernel.cuh) with Hopper's wgmma for its
// two products, instead of mma.sync: per 64-key tile a warpgroup issues 4 + 4 m64n64k16 wgmmas
// where mma.sync takes 64 mma and 32 ldmatrix instructions a warp, and the tensor cores run at
// their Hopper rate. The kernel was bound by instruction issue and latency (BENCHMARKS.md, runs 47-48
// and 139): fewer instructions, and 96 registers instead of 168 for five blocks per SM instead of
// three, are the point.
//
// S = Q K^T reads both operands from shared memory; O += P V takes A from the P fragments that
// softmax_step packs (wgmma's register A is mma.sync's A layout, warp by warp, and its m64n64
// accumulator is mma.sync's m16n8 accumulator eight times across, so the softmax code is shared).
// The tiles are in the 128-byte swizzle: Q and K as K-major operands (d contiguous), V as an
// N-major one (the transpose flag: d is N in P V). cp.async writes them in the generic proxy;
// each thread fences its copies into the async proxy before the barrier ahead of the wgmmas.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "attention_launch.h"
#include "attention_mma_kernel.cuh"
#include "hopper_ptx.cuh"

namespace embd::backend::cuda {
namespace {

using namespace attention_mma;

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

// Descriptor of an N-major (transposed) B operand in the 128-byte swizzle: 64 16-bit columns
// (one swizzle row of 128 bytes) per K row, 8-row groups 1024 bytes apart (the stride field).
// The leading field, the step between 64-column groups, is never used at N = 64; it holds the
// same 1024.
__device__ __forceinline__ std::uint64_t smem_desc_n_major(std::uint32_t addr) {
  return static_cast<std::uint64_t>((addr & 0x3FFFF) >> 4) | (static_cast<std::uint64_t>(1024 >> 4) << 16) |
         (static_cast<std::uint64_t>(1024 >> 4) << 32) | (static_cast<std::uint64_t>(1) << 62);
}

#define EMBD_WGMMA64_D                                                                                     \
  "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]),  \
      "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]),             \
      "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]),             \
      "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]),             \
      "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3])

#define EMBD_WGMMA64_SS(TYPE)                                                                              \
  "{\n .reg .pred p;\n setp.ne.b32 p, %34, 0;\n"                                                           \
  "wgmma.mma_async.sync.aligned.m64n64k16.f32." TYPE "." TYPE                                             \
  " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, " \
  "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 0;\n}"

#define EMBD_WGMMA64_RS_N_MAJOR(TYPE)                                                                      \
  "{\n .reg .pred p;\n setp.ne.b32 p, %37, 0;\n"                                                           \
  "wgmma.mma_async.sync.aligned.m64n64k16.f32." TYPE "." TYPE                                             \
  " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, " \
  "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}"

// d[64 x 64] (+)= A[64 x 16] B[64 x 16]^T, both K-major in shared memory.
template <typename T>
__device__ __forceinline__ void wgmma_64_ss(float (&d)[8][4], std::uint64_t a, std::uint64_t b, int accumulate) {
  if constexpr (std::is_same_v<T, __half>) {
    asm volatile(EMBD_WGMMA64_SS("f16") : EMBD_WGMMA64_D : "l"(a), "l"(b), "r"(accumulate));
  } else {
    asm volatile(EMBD_WGMMA64_SS("bf16") : EMBD_WGMMA64_D : "l"(a), "l"(b), "r"(accumulate));
  }
}

// d[64 x 64] (+)= A[64 x 16] B, A from registers (a: mma.sync's A fragment of the warp's 16 rows),
// B [16 x 64] N-major in shared memory (the transpose flag). d[n][e] holds row warp*16 + lane/4
// (+8 for e >= 2), column 8n + 2*(lane%4) (+1 for odd e).
template <typename T>
__device__ __forceinline__ void wgmma_64_rs_n_major(float (&d)[8][4], const std::uint32_t (&a)[4], std::uint64_t b,
                                                    int accumulate) {
  if constexpr (std::is_same_v<T, __half>) {
    asm volatile(EMBD_WGMMA64_RS_N_MAJOR("f16")
                 : EMBD_WGMMA64_D
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate));
  } else {
    asm volatile(EMBD_WGMMA64_RS_N_MAJOR("bf16")
                 : EMBD_WGMMA64_D
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate));
  }
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

// The Tiles policy of attention_mma_kernel.cuh for wgmma: Q, K and V tiles of 64 rows x 128 bytes
// in the 128-byte swizzle (16-byte chunk c of row r at chunk c ^ (r % 8)), 1024-byte aligned.
struct WgmmaTiles {
  static constexpr int kTileElems = kBK * kD;
  static constexpr int kTileAlign = 1024;
  static constexpr int kMinBlocksPerSm = 5;  // 96 registers (no spills), 41.5 KiB of shared memory
  // Q is read from shared memory by the wgmmas: a thread keeps nothing of it.
  struct QFragments {};

  // Where 16-byte chunk `chunk` of tile row r starts (elements): the 128-byte swizzle.
  __host__ __device__ __forceinline__ static constexpr int slot(int r, int chunk) {
    return r * kD + ((chunk ^ (r & 7)) << 3);
  }
  __device__ __forceinline__ static void landed() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
#endif
  }

  // Once the Q tile has landed (every thread, after a barrier): adds `qb` to it in place, rounded to
  // T as a biased projection would have stored it, and publishes the result to the wgmmas.
  template <typename T>
  __device__ __forceinline__ static void load_q(QFragments& /*qf*/, T* qs, const float* qb) {
    if (qb == nullptr) return;  // uniform over the block
    static_assert(Vec16<T>::kN == 8, "16-byte chunks of eight 16-bit values");
    // A thread takes chunk threadIdx.x % 8 of rows threadIdx.x / 8 + 16 i (as load_tile copied
    // them): one chunk of the bias, one place in the row.
    constexpr int kRowsPerPass = kThreads / 8;
    const int chunk = threadIdx.x & 7;
    float bias[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) bias[e] = qb[chunk * 8 + e];
    T* q = qs + slot(threadIdx.x >> 3, chunk);
#pragma unroll
    for (int i = 0; i < kBQ / kRowsPerPass; ++i) {
      float v[8];
      load_vec16(q + i * kRowsPerPass * kD, v);
#pragma unroll
      for (int e = 0; e < 8; ++e) v[e] += bias[e];
      store_vec16(q + i * kRowsPerPass * kD, v);
    }
    landed();
    __syncthreads();
  }

  template <typename T>
  __device__ __forceinline__ static void scores(float (&s)[8][4], const QFragments& /*qf*/, const T* qs,
                                                const T* kt) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    const std::uint32_t a = smem_addr(qs), b = smem_addr(kt);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) wgmma_64_ss<T>(s, smem_desc(a + kk * 32), smem_desc(b + kk * 32), kk > 0);
    wgmma_commit();
    wgmma_wait<0>();
#endif
  }

  template <typename T>
  __device__ __forceinline__ static void accumulate(float (&o)[8][4], const std::uint32_t (&p)[4][4], const T* vt) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    const std::uint32_t base = smem_addr(vt);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) wgmma_64_rs_n_major<T>(o, p[kk], smem_desc_n_major(base + kk * 16 * 128), 1);
    wgmma_commit();
    wgmma_wait<0>();
#endif
  }
};

}  // namespace

cudaError_t launch_attention_wgmma(const AttentionParams& p, dim3 grid, cudaStream_t stream) {
  return launch_tiles_kernel<WgmmaTiles>(p, grid, stream);
}

}  // namespace embd::backend::cuda
