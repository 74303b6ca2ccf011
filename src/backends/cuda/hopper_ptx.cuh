// Hopper (sm_90a) PTX wrappers for warp-specialised tensor-core kernels: mbarriers (within a block
// and across a cluster), TMA loads (plain and multicast) and stores, named barriers, and wgmma
// with both operands in 128-byte-swizzled shared memory. Device code only; include it from a
// *_sm90a.cu file (built for sm_90a alone, see src/CMakeLists.txt).
#pragma once

#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "device_util.cuh"

namespace embd::backend::cuda {

// Epilogue staging tiles are boxes of 64 rows x 64 16-bit columns: 128-byte rows in the 128-byte
// swizzle that TMA stores read.
constexpr unsigned kSwizzledBoxBytes = 64 * 128;

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

__device__ __forceinline__ void mbar_init(std::uint64_t* bar, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_addr(bar)), "r"(count));
}

__device__ __forceinline__ void mbar_expect_tx(std::uint64_t* bar, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_addr(bar)), "r"(bytes)
               : "memory");
}

// The "full" and "empty" barriers of a ring of stages filled by one TMA producer thread: a stage is
// full once its bytes have landed, empty once `empty_arrivals` consumer warps have released it.
__device__ __forceinline__ void init_stage_ring(std::uint64_t* full, std::uint64_t* empty, int stages,
                                                unsigned empty_arrivals) {
  for (int s = 0; s < stages; ++s) {
    mbar_init(&full[s], 1);
    mbar_init(&empty[s], empty_arrivals);
  }
}

// After the initialising thread's mbar_init()s: they are visible to the whole cluster and to the
// TMA unit (the async proxy) before anyone arrives on or fills the barriers.
__device__ __forceinline__ void fence_barrier_init() {
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}

// Arrive on the barrier at the same offset in block `cta` of the cluster (this one included).
__device__ __forceinline__ void mbar_arrive_in(std::uint64_t* bar, unsigned cta) {
  std::uint32_t remote = 0;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(smem_addr(bar)), "r"(cta));
  // Release at CTA scope, as CUTLASS does: what the arrival orders are this warp's wgmma reads of
  // the stage, already complete. A cluster-scope release also orders the thread's earlier global
  // stores; with it the gated GEMM ran 0.715 instead of 0.497 ms (run 58).
  asm volatile("mbarrier.arrive.shared::cluster.b64 _, [%0];" ::"r"(remote) : "memory");
}

// The address of `ptr` (this block's shared memory) in block `cta` of the cluster.
__device__ __forceinline__ std::uint32_t cluster_addr(const void* ptr, unsigned cta) {
  std::uint32_t remote = 0;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(smem_addr(ptr)), "r"(cta));
  return remote;
}

// A store into another block's shared memory (an address from cluster_addr()).
__device__ __forceinline__ void st_cluster_f32(std::uint32_t remote, float v) {
  asm volatile("st.shared::cluster.f32 [%0], %1;" ::"r"(remote), "f"(v) : "memory");
}

// Arrive on a barrier of another block (an address from cluster_addr()), releasing this thread's
// earlier writes (st_cluster_f32 included) at cluster scope: a waiter that sees the phase complete
// with mbar_wait_cluster() reads them.
__device__ __forceinline__ void mbar_arrive_release_cluster(std::uint32_t remote_bar) {
  asm volatile("mbarrier.arrive.release.cluster.shared::cluster.b64 _, [%0];" ::"r"(remote_bar) : "memory");
}

__device__ __forceinline__ unsigned cluster_rank() {
  unsigned rank = 0;
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(rank));
  return rank;
}

__device__ __forceinline__ void cluster_sync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;" ::: "memory");
}

__device__ __forceinline__ void mbar_wait(std::uint64_t* bar, unsigned parity) {
  std::uint32_t done = 0;
  do {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}"
        : "=r"(done)
        : "r"(smem_addr(bar)), "r"(parity)
        : "memory");
  } while (!done);
}

// mbar_wait() acquiring at cluster scope: for barriers other blocks arrive on with data.
__device__ __forceinline__ void mbar_wait_cluster(std::uint64_t* bar, unsigned parity) {
  std::uint32_t done = 0;
  do {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 p, [%1], %2;\n"
        " selp.u32 %0, 1, 0, p;\n}"
        : "=r"(done)
        : "r"(smem_addr(bar)), "r"(parity)
        : "memory");
  } while (!done);
}

__device__ __forceinline__ void tma_load_2d(std::uint32_t dst, const CUtensorMap* map, int c0, int c1,
                                            std::uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];" ::
          "r"(dst),
      "l"(reinterpret_cast<std::uint64_t>(map)), "r"(c0), "r"(c1), "r"(smem_addr(bar))
      : "memory");
}

// A TMA load written to the same offset of `dst` and signalled on the same offset of `bar` in every
// block of the cluster named in cta_mask.
__device__ __forceinline__ void tma_load_2d_multicast(std::uint32_t dst, const CUtensorMap* map, int c0, int c1,
                                                      std::uint64_t* bar, std::uint16_t cta_mask) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.multicast::cluster"
      " [%0], [%1, {%2, %3}], [%4], %5;" ::"r"(dst),
      "l"(reinterpret_cast<std::uint64_t>(map)), "r"(c0), "r"(c1), "r"(smem_addr(bar)), "h"(cta_mask)
      : "memory");
}

// A TMA store of a box from shared memory, committed as its own bulk group.
__device__ __forceinline__ void tma_store_2d(const CUtensorMap* map, std::uint32_t src, int c0, int c1) {
  asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%1, %2}], [%3];" ::"l"(
                   reinterpret_cast<std::uint64_t>(map)),
               "r"(c0), "r"(c1), "r"(src)
               : "memory");
}
__device__ __forceinline__ void tma_store_commit() { asm volatile("cp.async.bulk.commit_group;" ::: "memory"); }
// Until the TMA stores issued by this thread have read their shared memory.
__device__ __forceinline__ void tma_store_wait_read() {
  asm volatile("cp.async.bulk.wait_group.read 0;" ::: "memory");
}
__device__ __forceinline__ void tma_store_wait_all() { asm volatile("cp.async.bulk.wait_group 0;" ::: "memory"); }

// A named barrier (id 1-15; 0 is __syncthreads) for the 128 threads of one warpgroup.
__device__ __forceinline__ void warpgroup_barrier(int id) { asm volatile("bar.sync %0, 128;" ::"r"(id) : "memory"); }

__device__ __forceinline__ std::uint32_t ld_shared_u32(std::uint32_t addr) {
  std::uint32_t v = 0;
  asm volatile("ld.shared.u32 %0, [%1];" : "=r"(v) : "r"(addr) : "memory");
  return v;
}
// The byte offset in an epilogue staging tile (kSwizzledBoxBytes boxes) of the two columns
// g * 16 + 8 * right + 2 * (lane % 4) (and + 1) of row r, as a warpgroup's m64n256 accumulator
// group g holds them: 16-byte chunk (g % 4) * 2 + right of box g / 4's row, swizzled with the row
// (conflict-free across a warp's 8 rows).
__device__ __forceinline__ std::uint32_t swizzled_pair_offset(int g, int right, int r, int lane) {
  const std::uint32_t chunk = static_cast<std::uint32_t>(((g % 4) * 2 + right) ^ (r % 8));
  return static_cast<std::uint32_t>((g / 4) * kSwizzledBoxBytes + r * 128) + chunk * 16 + 4 * (lane % 4);
}

__device__ __forceinline__ void st_shared_u32(std::uint32_t addr, std::uint32_t v) {
  asm volatile("st.shared.u32 [%0], %1;" ::"r"(addr), "r"(v) : "memory");
}

// wgmma shared-memory descriptor: K-major operand, 128-byte swizzle, 8-row groups 1024 bytes
// apart. Stepping K by 16 elements adds 32 bytes to the start address (tiles are 1024-aligned).
__device__ __forceinline__ std::uint64_t smem_desc(std::uint32_t addr) {
  return static_cast<std::uint64_t>((addr & 0x3FFFF) >> 4) | (static_cast<std::uint64_t>(1) << 16) |
         (static_cast<std::uint64_t>(1024 >> 4) << 32) | (static_cast<std::uint64_t>(1) << 62);
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
template <int Pending>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(Pending) : "memory");
}

#define EMBD_WGMMA_OPERANDS                                                                               \
  "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[0][4]), "+f"(d[0][5]), "+f"(d[0][6]),  \
      "+f"(d[0][7]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[1][4]),             \
      "+f"(d[1][5]), "+f"(d[1][6]), "+f"(d[1][7]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]),             \
      "+f"(d[2][3]), "+f"(d[2][4]), "+f"(d[2][5]), "+f"(d[2][6]), "+f"(d[2][7]), "+f"(d[3][0]),             \
      "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[3][4]), "+f"(d[3][5]), "+f"(d[3][6]),             \
      "+f"(d[3][7]), "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[4][4]),             \
      "+f"(d[4][5]), "+f"(d[4][6]), "+f"(d[4][7]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]),             \
      "+f"(d[5][3]), "+f"(d[5][4]), "+f"(d[5][5]), "+f"(d[5][6]), "+f"(d[5][7]), "+f"(d[6][0]),             \
      "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[6][4]), "+f"(d[6][5]), "+f"(d[6][6]),             \
      "+f"(d[6][7]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3]), "+f"(d[7][4]),             \
      "+f"(d[7][5]), "+f"(d[7][6]), "+f"(d[7][7]), "+f"(d[8][0]), "+f"(d[8][1]), "+f"(d[8][2]),             \
      "+f"(d[8][3]), "+f"(d[8][4]), "+f"(d[8][5]), "+f"(d[8][6]), "+f"(d[8][7]), "+f"(d[9][0]),             \
      "+f"(d[9][1]), "+f"(d[9][2]), "+f"(d[9][3]), "+f"(d[9][4]), "+f"(d[9][5]), "+f"(d[9][6]),             \
      "+f"(d[9][7]), "+f"(d[10][0]), "+f"(d[10][1]), "+f"(d[10][2]), "+f"(d[10][3]), "+f"(d[10][4]),        \
      "+f"(d[10][5]), "+f"(d[10][6]), "+f"(d[10][7]), "+f"(d[11][0]), "+f"(d[11][1]), "+f"(d[11][2]),       \
      "+f"(d[11][3]), "+f"(d[11][4]), "+f"(d[11][5]), "+f"(d[11][6]), "+f"(d[11][7]), "+f"(d[12][0]),       \
      "+f"(d[12][1]), "+f"(d[12][2]), "+f"(d[12][3]), "+f"(d[12][4]), "+f"(d[12][5]), "+f"(d[12][6]),       \
      "+f"(d[12][7]), "+f"(d[13][0]), "+f"(d[13][1]), "+f"(d[13][2]), "+f"(d[13][3]), "+f"(d[13][4]),       \
      "+f"(d[13][5]), "+f"(d[13][6]), "+f"(d[13][7]), "+f"(d[14][0]), "+f"(d[14][1]), "+f"(d[14][2]),       \
      "+f"(d[14][3]), "+f"(d[14][4]), "+f"(d[14][5]), "+f"(d[14][6]), "+f"(d[14][7]), "+f"(d[15][0]),       \
      "+f"(d[15][1]), "+f"(d[15][2]), "+f"(d[15][3]), "+f"(d[15][4]), "+f"(d[15][5]), "+f"(d[15][6]),       \
      "+f"(d[15][7])

#define EMBD_WGMMA_REGS                                                                                   \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, "   \
  "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, "    \
  "%42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, "    \
  "%62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, "    \
  "%82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, " \
  "%102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, "  \
  "%119, %120, %121, %122, %123, %124, %125, %126, %127}"

// d[64 x 256] (+)= A[64 x 16] B[256 x 16]^T, both K-major in shared memory. d[g][e] holds row
// warp*16 + lane/4 (+8 for e = 2, 3, 6, 7), column g*16 + 2*(lane%4) (+1 odd e, +8 for e >= 4).
template <typename T>
__device__ __forceinline__ void wgmma_256(float (&d)[16][8], std::uint64_t a, std::uint64_t b, int accumulate);

template <>
__device__ __forceinline__ void wgmma_256<__half>(float (&d)[16][8], std::uint64_t a, std::uint64_t b,
                                                  int accumulate) {
  asm volatile("{\n .reg .pred p;\n setp.ne.b32 p, %130, 0;\n"
               "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 " EMBD_WGMMA_REGS
               ", %128, %129, p, 1, 1, 0, 0;\n}"
               : EMBD_WGMMA_OPERANDS
               : "l"(a), "l"(b), "r"(accumulate));
}

template <>
__device__ __forceinline__ void wgmma_256<__nv_bfloat16>(float (&d)[16][8], std::uint64_t a, std::uint64_t b,
                                                         int accumulate) {
  asm volatile("{\n .reg .pred p;\n setp.ne.b32 p, %130, 0;\n"
               "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 " EMBD_WGMMA_REGS
               ", %128, %129, p, 1, 1, 0, 0;\n}"
               : EMBD_WGMMA_OPERANDS
               : "l"(a), "l"(b), "r"(accumulate));
}

// A consumer warpgroup's mainloop over one tile of the warp-specialised kernels: k_blocks stages of
// the producer's ring from iteration `it`, each holding A [64 x 64] at its start and B [256 x 64]
// a_bytes later, multiplied into d with m64n256k16 wgmmas. One k-block's wgmmas stay in flight
// while the next are issued; release(s) runs once the wgmmas reading stage s have completed,
// except for the last stage, which is returned for the caller to release after wgmma_wait<0>().
template <typename T, int Stages, unsigned StageBytes, unsigned ABytes, typename Release>
__device__ __forceinline__ int wgmma_mainloop(float (&d)[16][8], std::uint64_t* full, std::uint32_t base, int it,
                                              int k_blocks, Release&& release) {
  int previous = -1;
  for (int kb = 0; kb < k_blocks; ++kb, ++it) {
    const int s = it % Stages;
    mbar_wait(&full[s], (it / Stages) & 1);
    const std::uint32_t a = base + static_cast<std::uint32_t>(s) * StageBytes;
    const std::uint32_t b = a + ABytes;
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {  // 64 / 16
      wgmma_256<T>(d, smem_desc(a + kk * 32), smem_desc(b + kk * 32), kb > 0 || kk > 0);
    }
    wgmma_commit();
    wgmma_wait<1>();
    if (previous >= 0) release(previous);
    previous = s;
  }
  return previous;
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

}  // namespace embd::backend::cuda
