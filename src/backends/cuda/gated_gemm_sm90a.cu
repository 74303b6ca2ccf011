// The fused gated-MLP projection (see gated_gemm_launch.h) for Hopper: TMA + wgmma, warp
// specialised and persistent.
//
// A block (3 warpgroups, one per SM) loops over output tiles of 64 rows x 128 outputs. Warpgroup 0
// is the producer: one thread issues TMA loads of the x tile [64 x 64] and the interleaved weight
// tile [256 x 64] into a ring of kStages shared-memory stages (128-byte swizzle, the layout wgmma
// reads), signalling "full" mbarriers. Warpgroups 1 and 2 take the block's tiles in turn ("ping
// pong"): per stage the owner issues four m64n256k16 wgmmas (F32 accumulators in registers), then
// releases the stage on its "empty" mbarrier. While one warpgroup applies the GLU to a finished
// tile and stores it, the other keeps the tensor cores busy with the next tile; accumulator
// column c (activated half) and c + 128 (other half) sit in the same thread.
//
// Blocks run in clusters of two that take vertically adjacent tiles (same weight rows, the next
// 64 rows of x). Each block loads half of the shared weight tile and multicasts it into both
// blocks' shared memory, halving the weight's reads from L2. A stage is therefore refilled only
// once the owning warpgroups of both blocks have released it: each of their warps arrives on the
// "empty" barrier of both blocks.
//
// The epilogue is what kept the tensor cores idle: with it skipped, the earlier cooperative kernel
// (both warpgroups on one 128-row tile) ran in 0.35 instead of 0.50 ms at 65,536 rows (H200). So
// besides the turns above, the GELU is a short polynomial (normal_cdf.h) instead of erff, and the
// outputs go to a staging tile in shared memory and leave by TMA stores that run on while the
// warpgroup starts its next tile (stored from registers, a warp's 32-bit stores covered half a
// 32-byte sector at a time). Alone, each of these four changes gained 0-4%; the GELU and the TMA
// stores together 8-11%; all four 12-16% (gpu_ops_bench, 16k and 65k rows). An
// output that TMA cannot address (row stride not a multiple of 16 bytes) keeps the direct stores.
//
// Tried in session 9: 128-row tiles shared by both consumers fill less shared memory per FLOP, and
// their mainloop alone ran at 683-785 TFLOP/s against this kernel's 567-628. But the GLU costs
// ~0.03 ms per 16k rows wherever it runs (on spare warps, in the wgmma shadow, or exposed), and the
// turns here hide more of it: those variants were 15-20% slower (BENCHMARKS.md).
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "cluster_launch.h"
#include "device_util.cuh"
#include "gated_gemm_launch.h"
#include "early_launch.cuh"
#include "hopper_ptx.cuh"
#include "normal_cdf.h"
#include "tensor_map.h"

namespace embd::backend::cuda {
namespace {

constexpr int kBlockM = 64;                // rows per tile: one consumer warpgroup's
constexpr int kBlockN = kGatedGemmBlockN;  // weight rows per tile: 128 activated + 128 other
constexpr int kOutN = kBlockN / 2;         // outputs per tile
constexpr int kBlockK = kGatedGemmBlockK;  // 64 x 16 bits = one 128-byte swizzle row
constexpr int kStages = 4;
constexpr int kThreads = 384;
constexpr int kConsumers = 2;       // warpgroups taking tiles in turn
constexpr int kConsumerWarps = 4;   // per warpgroup
constexpr int kCluster = 2;                              // blocks sharing each weight tile
constexpr int kBLoadRows = kBlockN / kCluster;           // weight rows each block loads
constexpr unsigned kATileBytes = kBlockM * kBlockK * 2;  // 8 KiB
constexpr unsigned kBTileBytes = kBlockN * kBlockK * 2;  // 32 KiB
constexpr unsigned kBLoadBytes = kBTileBytes / kCluster;
constexpr unsigned kStageBytes = kATileBytes + kBTileBytes;
// Per consumer warpgroup: its 64 rows x 128 outputs as two 64-column halves, each 64 rows of 128
// bytes in the 128-byte swizzle that the TMA store reads.
constexpr int kStoreCols = 64;
static_assert(kStoreCols == kTensorMapBoxCols && kBlockK == kTensorMapBoxCols, "one tensor-map box per k-block and per stored half");
constexpr unsigned kStoreHalfBytes = kBlockM * kStoreCols * 2;  // 8 KiB
static_assert(kStoreHalfBytes == kSwizzledBoxBytes, "staging halves as swizzled_pair_offset() lays them out");
constexpr unsigned kStagingBytes = 2 * kStoreHalfBytes;     // per consumer warpgroup
constexpr unsigned kSmemBytes = kStages * kStageBytes + 2 * kStagingBytes + 1024;  // + room to align to 1024

static_assert(sizeof(CUtensorMap) == sizeof(GatedGemmWeightMap), "CUtensorMap is 128 bytes");

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

// The GLU of one output; the GELU is x * Phi(x) with normal_cdf.h's Phi (within 1e-6 of erf's).
template <ActKind Act>
__device__ __forceinline__ float gate(float g, float u) {
  if constexpr (Act == ActKind::kGeluErf) return g * normal_cdf_fast(g) * u;
  return activate(g, Act) * u;  // Act is a constant here: the switch folds away
}

// Outputs e and e + 1 of accumulator group g packed to T: groups 0-7 are the activated half, 8-15
// the matching other half.
template <typename T, ActKind Act>
__device__ __forceinline__ std::uint32_t glu_pair(const float (&d)[16][8], int g, int e) {
  return pack2<T>(gate<Act>(d[g][e], d[g + 8][e]), gate<Act>(d[g][e + 1], d[g + 8][e + 1]));
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

// Tiles go out in vertical pairs, one pair per cluster at a time: pair p covers weight rows
// (p % tiles_n) * kBlockN and x rows from (p / tiles_n) * 2 * kBlockM, the block of cluster rank r
// taking the r-th 64 of them.
template <typename T, ActKind Act>
__global__ void __launch_bounds__(kThreads, 1)
    gated_gemm_kernel(const __grid_constant__ CUtensorMap x_map, const __grid_constant__ CUtensorMap w_map,
                      const __grid_constant__ CUtensorMap out_map, bool tma_store, T* __restrict__ out,
                      long long ldo, int rows, int k_blocks, int tiles_n, int pairs) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ unsigned char smem_raw[];
  __shared__ alignas(8) std::uint64_t full[kStages];
  __shared__ alignas(8) std::uint64_t empty[kStages];
  __shared__ alignas(8) std::uint64_t turn[kConsumers];  // "the other warpgroup's waits are done"
  const std::uint32_t base = (smem_addr(smem_raw) + 1023u) & ~1023u;
  const int warpgroup = static_cast<int>(threadIdx.x) / 128;
  const unsigned rank = cluster_rank();
  const int cluster = static_cast<int>(blockIdx.x) / kCluster, clusters = static_cast<int>(gridDim.x) / kCluster;

  if (threadIdx.x == 0) {
    init_stage_ring(full, empty, kStages, kCluster * kConsumerWarps);
    for (int c = 0; c < kConsumers; ++c) mbar_init(&turn[c], kConsumerWarps);
    fence_barrier_init();
  }
  // Both blocks' barriers exist before either block multicasts into or arrives on the other.
  cluster_sync();
  wait_for_previous_kernels();  // x comes from the kernel ahead; out may be what it reads

  if (warpgroup == 0) {  // producer
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;");
    if (threadIdx.x == 0) {
      const int last_m0 = (rows - 1) / kBlockM * kBlockM;
      int it = 0;
      for (int pair = cluster; pair < pairs; pair += clusters) {
        // A block whose 64 rows are all past T (an odd tile count) loads real rows it never
        // stores, so that its half of the weight tile still reaches the other block.
        const int m0 = ::min(((pair / tiles_n) * kCluster + static_cast<int>(rank)) * kBlockM, last_m0);
        const int n0 = (pair % tiles_n) * kBlockN;
        for (int kb = 0; kb < k_blocks; ++kb, ++it) {
          const int s = it % kStages;
          // A fresh barrier counts as having completed the phase before phase 0.
          mbar_wait(&empty[s], ((it / kStages) & 1) ^ 1);
          mbar_expect_tx(&full[s], kStageBytes);  // own x tile + both halves of the weight tile
          const std::uint32_t a = base + static_cast<std::uint32_t>(s) * kStageBytes;
          tma_load_2d(a, &x_map, kb * kBlockK, m0, &full[s]);  // rows past T read as zeros
          tma_load_2d_multicast(a + kATileBytes + rank * kBLoadBytes, &w_map, kb * kBlockK,
                                n0 + static_cast<int>(rank) * kBLoadRows, &full[s], (1u << kCluster) - 1);
        }
      }
      // Leave only once both blocks' consumers have released every stage: until then the other
      // block may still arrive on this block's barriers.
      for (int i = 0; i < kStages; ++i, ++it) mbar_wait(&empty[it % kStages], ((it / kStages) & 1) ^ 1);
    }
    return;
  }

  asm volatile("setmaxnreg.inc.sync.aligned.u32 232;");
  const int consumer = warpgroup - 1;
  const int warp = (static_cast<int>(threadIdx.x) % 128) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  // A consumer warp releases a stage in both blocks once its reads of it are done.
  auto release = [&](int s) {
    if (lane == 0) {
      for (unsigned cta = 0; cta < kCluster; ++cta) mbar_arrive_in(&empty[s], cta);
    }
  };
  // Tile j's waits on the "full" barriers begin once tile j - 1's are over. That keeps the two
  // warpgroups' wgmmas in turns, and keeps a warpgroup from testing a stage's barrier for its next
  // tile while the phase before (the other warpgroup's use of the stage) is still open: a parity
  // wait cannot tell those two phases apart.
  auto pass_turn = [&] {
    if (lane == 0) mbar_arrive_in(&turn[consumer ^ 1], rank);
  };
  const std::uint32_t staging = base + kStages * kStageBytes + static_cast<std::uint32_t>(consumer) * kStagingBytes;
  const bool issuer = threadIdx.x % 128 == 0;  // issues this warpgroup's TMA stores
  float d[16][8];
  // The block's j-th tile (pair) belongs to warpgroup j % 2; its stages are the producer's
  // iterations j * k_blocks onwards.
  for (int pair = cluster + consumer * clusters, j = consumer; pair < pairs; pair += kConsumers * clusters, j += kConsumers) {
    if (j > 0) mbar_wait(&turn[consumer], ((j - 1) / 2) & 1);
    int it = j * k_blocks;
    const int slab = ((pair / tiles_n) * kCluster + static_cast<int>(rank)) * kBlockM;
    if (slab >= rows) {  // all 64 rows past T (a short batch): nothing to multiply or store
      for (int kb = 0; kb < k_blocks; ++kb, ++it) {
        mbar_wait(&full[it % kStages], (it / kStages) & 1);
        release(it % kStages);
      }
      pass_turn();
      continue;
    }
    const int previous =
        wgmma_mainloop<T, kStages, kStageBytes, kATileBytes>(d, full, base, it, k_blocks, release);
    pass_turn();
    wgmma_wait<0>();
    release(previous);
    // GLU epilogue, staged for TMA stores or stored from registers.
    if (tma_store) {
      // The staging tile is free once the previous tile's stores have read it.
      if (issuer) tma_store_wait_read();
      warpgroup_barrier(consumer + 1);
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int r = warp * 16 + lane / 4 + 8 * half;  // row within the warpgroup's 64
#pragma unroll
        for (int g = 0; g < 8; ++g) {
#pragma unroll
          for (int right = 0; right < 2; ++right) {
            st_shared_u32(staging + swizzled_pair_offset(g, right, r, lane), glu_pair<T, Act>(d, g, 2 * half + 4 * right));
          }
        }
      }
      asm volatile("fence.proxy.async.shared::cta;" ::: "memory");  // visible to the TMA unit
      warpgroup_barrier(consumer + 1);
      if (issuer) {
        const int c0 = (pair % tiles_n) * kOutN;
        for (int h = 0; h < 2; ++h) tma_store_2d(&out_map, staging + h * kStoreHalfBytes, c0 + h * kStoreCols, slab);
        tma_store_commit();  // rows past T are not written
      }
      continue;
    }
    const int row0 = slab + warp * 16 + lane / 4;
    const long long col0 = static_cast<long long>(pair % tiles_n) * kOutN + 2 * (lane % 4);
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int row = row0 + 8 * half;
      if (row >= rows) continue;
      T* dst = out + static_cast<long long>(row) * ldo + col0;
#pragma unroll
      for (int g = 0; g < 8; ++g) {
#pragma unroll
        for (int right = 0; right < 2; ++right) {
          *reinterpret_cast<std::uint32_t*>(dst + g * 16 + 8 * right) = glu_pair<T, Act>(d, g, 2 * half + 4 * right);
        }
      }
    }
  }
  if (tma_store && issuer) tma_store_wait_all();
#else
  (void)x_map, (void)w_map, (void)out_map, (void)tma_store, (void)out, (void)ldo, (void)rows, (void)k_blocks,
      (void)tiles_n, (void)pairs;
  __trap();  // built without sm_90a; gated_gemm_supported() keeps this from being launched
#endif
}

constexpr ClusterShape kShape{kCluster, kThreads, kSmemBytes};

template <typename T, ActKind Act>
cudaError_t launch_typed(const GatedGemmParams& p, const CUtensorMap& x_map, const CUtensorMap& w_map,
                         const CUtensorMap& out_map, bool tma_store, cudaStream_t stream) {
  int resident = 0;
  if (const cudaError_t err = resident_clusters<gated_gemm_kernel<T, Act>>(kShape, &resident); err != cudaSuccess) {
    return err;
  }
  if (p.sm_count > 0) resident = std::min(resident, std::max(1, p.sm_count / kCluster));
  const long long tiles_n = p.inner / kOutN;
  const long long m_tiles = (p.rows + kBlockM - 1) / kBlockM;
  const long long pairs = (m_tiles + kCluster - 1) / kCluster * tiles_n;
  cudaLaunchAttribute cluster_dim{};
  const cudaLaunchConfig_t config =
      cluster_launch_config(kShape, static_cast<unsigned>(std::min<long long>(pairs, resident)), stream, &cluster_dim);
  return launch_maybe_early(gated_gemm_kernel<T, Act>, config.gridDim, config.blockDim, config.dynamicSmemBytes, stream,
                            p.early_launch, &cluster_dim, x_map, w_map, out_map, tma_store, static_cast<T*>(p.out), p.ldo,
                            static_cast<int>(p.rows), static_cast<int>(p.k / kBlockK), static_cast<int>(tiles_n),
                            static_cast<int>(pairs));
}

}  // namespace

bool gated_gemm_supported(int cc_major, int cc_minor, ElemType type, long long k, long long inner, ActKind act) {
  return cc_major == 9 && cc_minor == 0 && (type == ElemType::kF16 || type == ElemType::kBF16) && k > 0 &&
         k % kBlockK == 0 && inner > 0 && inner % kOutN == 0 &&
         (act == ActKind::kGeluErf || act == ActKind::kRelu) && tensor_maps_available();
}

void interleave_gated_rows(long long inner, bool activate_first_half, std::int64_t* dst_of_src) {
  const long long act0 = activate_first_half ? 0 : inner, other0 = activate_first_half ? inner : 0;
  for (long long j = 0; j < inner; ++j) {
    const long long block = j / kOutN, within = j % kOutN;
    dst_of_src[act0 + j] = block * kBlockN + within;
    dst_of_src[other0 + j] = block * kBlockN + kOutN + within;
  }
}

cudaError_t make_gated_gemm_weight_map(ElemType type, const void* w, long long inner, long long k,
                                       GatedGemmWeightMap* out) {
  return make_tensor_map_2d(type, w, 2 * inner, k, k, kBLoadRows, reinterpret_cast<CUtensorMap*>(out->bytes));
}

bool gated_gemm_aligned(const GatedGemmParams& p) {
  return tensor_map_addressable(p.x, p.ldx) && reinterpret_cast<std::uintptr_t>(p.out) % 4 == 0 && p.ldo % 2 == 0;
}

cudaError_t launch_gated_gemm(const GatedGemmParams& p, const GatedGemmWeightMap& w, cudaStream_t stream) {
  if (p.rows <= 0) return cudaSuccess;
  if (p.rows > 0x7fffffffLL || p.k % kBlockK != 0 || p.inner % kOutN != 0 || !gated_gemm_aligned(p)) {
    return cudaErrorInvalidValue;
  }
  CUtensorMap x_map;
  const cudaError_t err = make_tensor_map_2d(p.type, p.x, p.rows, p.k, p.ldx, kBlockM, &x_map);
  if (err != cudaSuccess) return err;
  const auto& w_map = *reinterpret_cast<const CUtensorMap*>(w.bytes);
  // TMA addresses rows 16-byte aligned; other outputs are stored from registers.
  CUtensorMap out_map{};
  const bool tma_store = tensor_map_addressable(p.out, p.ldo) &&
                         make_tensor_map_2d(p.type, p.out, p.rows, p.inner, p.ldo, kBlockM, &out_map) == cudaSuccess;
  const bool gelu = p.act == ActKind::kGeluErf;
  if (p.type == ElemType::kBF16) {
    return gelu ? launch_typed<__nv_bfloat16, ActKind::kGeluErf>(p, x_map, w_map, out_map, tma_store, stream)
                : launch_typed<__nv_bfloat16, ActKind::kRelu>(p, x_map, w_map, out_map, tma_store, stream);
  }
  return gelu ? launch_typed<__half, ActKind::kGeluErf>(p, x_map, w_map, out_map, tma_store, stream)
              : launch_typed<__half, ActKind::kRelu>(p, x_map, w_map, out_map, tma_store, stream);
}

}  // namespace embd::backend::cuda
