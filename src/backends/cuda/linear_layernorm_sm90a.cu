// A Linear layer of 512 outputs fused with the residual LayerNorm after it (see
// linear_layernorm_launch.h) for Hopper: TMA + wgmma, warp specialised and persistent, built like
// the gated projection (gated_gemm_sm90a.cu), whose notes explain the pipeline.
//
// A LayerNorm needs whole rows, and one warpgroup's accumulators hold at most 64 x 256. So a
// cluster of two blocks computes each 64-row tile: block r the columns [256r, 256r + 256). Both
// multiply the same 64 rows of x, so each block loads half of that x tile and multicasts it into
// both blocks. Per block, warpgroup 0 produces (TMA loads into a ring of kStages stages) and
// warpgroups 1 and 2 take the cluster's tiles in turn ("ping pong"), so that one's epilogue runs
// while the other's wgmmas keep the tensor cores busy.
//
// The epilogue: the warpgroup's TMA engine has already brought the tile's residual (64 x 256) into
// the warpgroup's staging tile while the mainloop ran. Each thread adds bias and residual to its
// accumulators, sums its rows, and the two blocks swap their 64 row sums through distributed
// shared memory (a store into the other block plus an mbarrier arrive, both at cluster scope).
// Mean first, then the centred sum of squares in a second exchange: two passes over registers,
// as exact as the standalone LayerNorm. The normalised row overwrites the residual in the staging
// tile, which leaves by TMA stores.
//
// Measured (H100, BENCHMARKS.md session 8): at K = 512 faster than cuBLASLt + add_layernorm at
// every size (0.034 against 0.047 ms at 16k rows); at K = 2048 no faster (its mainloop trails
// cuBLASLt's), so the backend fuses only K <= 512. The epilogue, not the mainloop, bounds it at
// K = 512. Tried and slower: clusters of 2 x 2 sharing the weight tile too, and one exchange per
// tile (Chan's combination of the two halves' statistics) with three stages instead of four.
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "cluster_launch.h"
#include "device_util.cuh"
#include "early_launch.cuh"
#include "hopper_ptx.cuh"
#include "linear_layernorm_launch.h"
#include "tensor_map.h"

namespace embd::backend::cuda {
namespace {

constexpr int kWidth = static_cast<int>(kLinearLayerNormWidth);
constexpr int kCluster = 2;                   // blocks per row tile
constexpr int kBlockM = 64;                   // rows per tile: one consumer warpgroup's
constexpr int kBlockN = kWidth / kCluster;    // columns per block: 256, one m64n256 wgmma
constexpr int kBlockK = kTensorMapBoxCols;    // 64 x 16 bits = one 128-byte swizzle row
constexpr int kStages = 4;
constexpr int kThreads = 384;
constexpr int kConsumers = 2;        // warpgroups taking tiles in turn
constexpr int kConsumerWarps = 4;    // per warpgroup
constexpr int kALoadRows = kBlockM / kCluster;           // x rows each block loads for both
constexpr unsigned kATileBytes = kBlockM * kBlockK * 2;  // 8 KiB
constexpr unsigned kALoadBytes = kATileBytes / kCluster;
constexpr unsigned kBTileBytes = kBlockN * kBlockK * 2;  // 32 KiB
constexpr unsigned kStageBytes = kATileBytes + kBTileBytes;
// Per consumer warpgroup: its 64 rows x 256 columns as four 64-column boxes, each 64 rows of 128
// bytes in the 128-byte swizzle that TMA loads and stores use. The residual arrives here and the
// output leaves from here.
constexpr int kBoxes = kBlockN / kTensorMapBoxCols;
constexpr unsigned kBoxBytes = kBlockM * kTensorMapBoxCols * 2;  // 8 KiB
static_assert(kBoxBytes == kSwizzledBoxBytes, "staging boxes as swizzled_pair_offset() lays them out");
constexpr unsigned kStagingBytes = kBoxes * kBoxBytes;           // 32 KiB
constexpr unsigned kSmemBytes = kStages * kStageBytes + kConsumers * kStagingBytes + 1024;  // + room to align
// Lanes that publish a row sum: lane % 4 == 0 of each warp holds two rows' sums after the quad
// reduction.
constexpr unsigned kExchangeArrivals = kConsumerWarps * 8;

static_assert(sizeof(CUtensorMap) == sizeof(LinearLayerNormWeightMap), "CUtensorMap is 128 bytes");
static_assert(kSmemBytes + 1024 <= 227 * 1024, "within Hopper's 227 KiB of shared memory per block");

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

// Sum over the four lanes (lane % 4) that hold one row's columns.
__device__ __forceinline__ float quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

// Tile t covers rows t * 64 .. t * 64 + 63; cluster c takes tiles c, c + clusters, ...
template <typename T>
__global__ void __launch_bounds__(kThreads, 1)
    linear_layernorm_kernel(const __grid_constant__ CUtensorMap x_map, const __grid_constant__ CUtensorMap w_map,
                            const __grid_constant__ CUtensorMap residual_map,
                            const __grid_constant__ CUtensorMap out_map, bool has_residual,
                            const float* bias, const float* gamma,
                            const float* beta, float eps, int rows, int k_blocks, int tiles) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ unsigned char smem_raw[];
  __shared__ alignas(8) std::uint64_t full[kStages];
  __shared__ alignas(8) std::uint64_t empty[kStages];
  __shared__ alignas(8) std::uint64_t turn[kConsumers];      // "the other warpgroup's waits are done"
  __shared__ alignas(8) std::uint64_t residual_full[kConsumers];
  // Row sums from the other block: [warpgroup][pass: sum, centred sum of squares][row], each pass
  // signalled on its own barrier (see the epilogue for why two).
  __shared__ alignas(8) std::uint64_t exchanged[kConsumers][2];
  __shared__ float peer_sums[kConsumers][2][kBlockM];
  const std::uint32_t base = (smem_addr(smem_raw) + 1023u) & ~1023u;
  const int warpgroup = static_cast<int>(threadIdx.x) / 128;
  const unsigned rank = cluster_rank(), peer = rank ^ 1u;
  const int cluster = static_cast<int>(blockIdx.x) / kCluster, clusters = static_cast<int>(gridDim.x) / kCluster;

  if (threadIdx.x == 0) {
    init_stage_ring(full, empty, kStages, kCluster * kConsumerWarps);
    for (int c = 0; c < kConsumers; ++c) {
      mbar_init(&turn[c], kConsumerWarps);
      mbar_init(&residual_full[c], 1);
      mbar_init(&exchanged[c][0], kExchangeArrivals);
      mbar_init(&exchanged[c][1], kExchangeArrivals);
    }
    fence_barrier_init();
  }
  // Both blocks' barriers exist before either block multicasts into or arrives on the other.
  cluster_sync();
  wait_for_previous_kernels();  // x and the residual come from the kernels ahead

  if (warpgroup == 0) {  // producer
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;");
    if (threadIdx.x == 0) {
      // A half tile wholly past T loads the last real rows instead (never stored): a box wholly
      // outside the matrix is not worth relying on.
      const int last_half = (rows - 1) / kALoadRows * kALoadRows;
      int it = 0;
      for (int tile = cluster; tile < tiles; tile += clusters) {
        const int a_row = ::min(tile * kBlockM + static_cast<int>(rank) * kALoadRows, last_half);
        for (int kb = 0; kb < k_blocks; ++kb, ++it) {
          const int s = it % kStages;
          // A fresh barrier counts as having completed the phase before phase 0.
          mbar_wait(&empty[s], ((it / kStages) & 1) ^ 1);
          mbar_expect_tx(&full[s], kStageBytes);  // both halves of the x tile + own weight tile
          const std::uint32_t a = base + static_cast<std::uint32_t>(s) * kStageBytes;
          tma_load_2d_multicast(a + rank * kALoadBytes, &x_map, kb * kBlockK, a_row, &full[s], (1u << kCluster) - 1);
          tma_load_2d(a + kATileBytes, &w_map, kb * kBlockK, static_cast<int>(rank) * kBlockN, &full[s]);
        }
      }
      // Leave only once both blocks' consumers have released every stage: until then the other
      // block may still arrive on this block's barriers.
      for (int i = 0; i < kStages; ++i, ++it) mbar_wait(&empty[it % kStages], ((it / kStages) & 1) ^ 1);
    }
    cluster_sync();  // see the end of the kernel
    return;
  }

  asm volatile("setmaxnreg.inc.sync.aligned.u32 232;");
  const int consumer = warpgroup - 1;
  const int warp = (static_cast<int>(threadIdx.x) % 128) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  auto release = [&](int s) {  // in both blocks: the other block's x half lands here too
    if (lane == 0) {
      for (unsigned cta = 0; cta < kCluster; ++cta) mbar_arrive_in(&empty[s], cta);
    }
  };
  auto pass_turn = [&] {
    if (lane == 0) mbar_arrive_in(&turn[consumer ^ 1], rank);
  };
  const std::uint32_t staging = base + kStages * kStageBytes + static_cast<std::uint32_t>(consumer) * kStagingBytes;
  const bool issuer = threadIdx.x % 128 == 0;  // issues this warpgroup's residual loads and stores
  const int row_lo = warp * 16 + lane / 4;     // this thread's rows in the tile: row_lo, row_lo + 8
  const int col0 = static_cast<int>(rank) * kBlockN + 2 * (lane % 4);
  // Swaps this thread's two row partials (pass p) with the other block's; returns the row totals.
  // A pass's barrier completes once per tile of this warpgroup (parity = turn & 1). Each pass has
  // its own barrier: with one, the other block's second-pass arrivals could complete the next
  // phase before this block had waited for the first, and a parity wait cannot tell them apart.
  // The exchanges are their own handshake: a block writes a pass's buffer again only after waiting
  // for the other block's following pass, which that block sends after reading the buffer.
  auto exchange = [&](int p, int turn_index, float (&partial)[2]) {
    if (lane % 4 == 0) {  // (addresses in the other block mapped here, not kept live across the mainloop)
      st_cluster_f32(cluster_addr(&peer_sums[consumer][p][row_lo], peer), partial[0]);
      st_cluster_f32(cluster_addr(&peer_sums[consumer][p][row_lo + 8], peer), partial[1]);
      mbar_arrive_release_cluster(cluster_addr(&exchanged[consumer][p], peer));
    }
    mbar_wait_cluster(&exchanged[consumer][p], turn_index & 1);
    partial[0] += peer_sums[consumer][p][row_lo];
    partial[1] += peer_sums[consumer][p][row_lo + 8];
  };
  float d[16][8];
  // The cluster's j-th tile belongs to warpgroup j % 2; its stages are the producer's iterations
  // j * k_blocks onwards.
  for (int tile = cluster + consumer * clusters, j = consumer; tile < tiles;
       tile += kConsumers * clusters, j += kConsumers) {
    const int turn_index = j / kConsumers;  // this warpgroup's how-manieth tile
    const int m0 = tile * kBlockM;
    // The staging tile is free once the previous tile's stores have read it; then the residual
    // loads run alongside the mainloop.
    if (issuer) {
      tma_store_wait_read();
      if (has_residual) {
        mbar_expect_tx(&residual_full[consumer], kStagingBytes);
        for (int b = 0; b < kBoxes; ++b) {
          tma_load_2d(staging + b * kBoxBytes, &residual_map, static_cast<int>(rank) * kBlockN + b * kTensorMapBoxCols,
                      m0, &residual_full[consumer]);
        }
      }
    }
    if (j > 0) mbar_wait(&turn[consumer], ((j - 1) / 2) & 1);
    const int previous =
        wgmma_mainloop<T, kStages, kStageBytes, kATileBytes>(d, full, base, j * k_blocks, k_blocks, release);
    pass_turn();
    wgmma_wait<0>();
    release(previous);

    // Epilogue. v = acc + bias + residual, in place in d.
    if (has_residual) {
      mbar_wait(&residual_full[consumer], turn_index & 1);
    } else {
      warpgroup_barrier(consumer + 1);  // every thread past the issuer's wait for the old stores
    }
    float part[2] = {0.0f, 0.0f};
#pragma unroll
    for (int g = 0; g < 16; ++g) {
#pragma unroll
      for (int right = 0; right < 2; ++right) {
        const int col = col0 + g * 16 + 8 * right;
        const float2 b = bias != nullptr ? *reinterpret_cast<const float2*>(bias + col) : make_float2(0.0f, 0.0f);
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int e = 2 * half + 4 * right;
          float2 r = make_float2(0.0f, 0.0f);
          if (has_residual) r = unpack2<T>(ld_shared_u32(staging + swizzled_pair_offset(g, right, row_lo + 8 * half, lane)));
          d[g][e] += b.x + r.x;
          d[g][e + 1] += b.y + r.y;
          part[half] += d[g][e] + d[g][e + 1];
        }
      }
    }
    part[0] = quad_sum(part[0]);
    part[1] = quad_sum(part[1]);
    exchange(0, turn_index, part);
    const float mean[2] = {part[0] * (1.0f / kWidth), part[1] * (1.0f / kWidth)};
    float sq[2] = {0.0f, 0.0f};
#pragma unroll
    for (int g = 0; g < 16; ++g) {
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        // Centred in place: pass 3 then reads d alone (recomputing d - mean there would keep
        // 128 differences live next to d and spill).
        d[g][e] -= mean[(e / 2) % 2];
        sq[(e / 2) % 2] += d[g][e] * d[g][e];
      }
    }
    sq[0] = quad_sum(sq[0]);
    sq[1] = quad_sum(sq[1]);
    exchange(1, turn_index, sq);
    const float rstd[2] = {rsqrtf(sq[0] * (1.0f / kWidth) + eps), rsqrtf(sq[1] * (1.0f / kWidth) + eps)};
#pragma unroll
    for (int g = 0; g < 16; ++g) {
#pragma unroll
      for (int right = 0; right < 2; ++right) {
        const int col = col0 + g * 16 + 8 * right;
        const float2 gm = *reinterpret_cast<const float2*>(gamma + col);
        const float2 bt = *reinterpret_cast<const float2*>(beta + col);
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int e = 2 * half + 4 * right;
          const float y0 = d[g][e] * rstd[half] * gm.x + bt.x;
          const float y1 = d[g][e + 1] * rstd[half] * gm.y + bt.y;
          st_shared_u32(staging + swizzled_pair_offset(g, right, row_lo + 8 * half, lane), pack2<T>(y0, y1));
        }
      }
    }
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");  // visible to the TMA unit
    warpgroup_barrier(consumer + 1);
    if (issuer) {
      for (int b = 0; b < kBoxes; ++b) {
        tma_store_2d(&out_map, staging + b * kBoxBytes, static_cast<int>(rank) * kBlockN + b * kTensorMapBoxCols, m0);
      }
      tma_store_commit();  // rows past T are not written
    }
  }
  if (issuer) tma_store_wait_all();
  // Neither block exits while the other may still store into its shared memory. The exchanges
  // already order that (each remote store precedes an arrive the receiver waits for), but
  // racecheck flags remote stores into a block that might have exited without this barrier.
  cluster_sync();
#else
  (void)x_map, (void)w_map, (void)residual_map, (void)out_map, (void)has_residual, (void)bias, (void)gamma,
      (void)beta, (void)eps, (void)rows, (void)k_blocks, (void)tiles;
  __trap();  // built without sm_90a; linear_layernorm_supported() keeps this from being launched
#endif
}

constexpr ClusterShape kShape{kCluster, kThreads, kSmemBytes};

template <typename T>
cudaError_t launch_typed(const LinearLayerNormParams& p, const CUtensorMap& x_map, const CUtensorMap& w_map,
                         const CUtensorMap& residual_map, const CUtensorMap& out_map, cudaStream_t stream) {
  int resident = 0;
  if (const cudaError_t err = resident_clusters<linear_layernorm_kernel<T>>(kShape, &resident); err != cudaSuccess) {
    return err;
  }
  if (p.sm_count > 0) resident = std::min(resident, std::max(1, p.sm_count / kCluster));
  const long long tiles = (p.rows + kBlockM - 1) / kBlockM;
  cudaLaunchAttribute cluster_dim{};
  const cudaLaunchConfig_t config =
      cluster_launch_config(kShape, static_cast<unsigned>(std::min<long long>(tiles, resident)), stream, &cluster_dim);
  return launch_maybe_early(linear_layernorm_kernel<T>, config.gridDim, config.blockDim, config.dynamicSmemBytes, stream,
                            p.early_launch, &cluster_dim, x_map, w_map, residual_map, out_map,
                            p.residual != nullptr, p.bias, p.gamma, p.beta, p.eps, static_cast<int>(p.rows),
                            static_cast<int>(p.k / kBlockK), static_cast<int>(tiles));
}

}  // namespace

bool linear_layernorm_supported(int cc_major, int cc_minor, ElemType type, long long k, long long n) {
  return cc_major == 9 && cc_minor == 0 && (type == ElemType::kF16 || type == ElemType::kBF16) && k > 0 &&
         k % kBlockK == 0 && n == kLinearLayerNormWidth && tensor_maps_available();
}

cudaError_t make_linear_layernorm_weight_map(ElemType type, const void* w, long long k,
                                             LinearLayerNormWeightMap* out) {
  return make_tensor_map_2d(type, w, kLinearLayerNormWidth, k, k, kBlockN, reinterpret_cast<CUtensorMap*>(out->bytes));
}

bool linear_layernorm_aligned(const LinearLayerNormParams& p) {
  return tensor_map_addressable(p.x, p.ldx) && tensor_map_addressable(p.out, p.ldo) &&
         (p.residual == nullptr || tensor_map_addressable(p.residual, p.ldr));
}

cudaError_t launch_linear_layernorm(const LinearLayerNormParams& p, const LinearLayerNormWeightMap& w,
                                    cudaStream_t stream) {
  if (p.rows <= 0) return cudaSuccess;
  if (p.rows > 0x7fffffffLL - kBlockM || p.k % kBlockK != 0 || p.k <= 0 || !linear_layernorm_aligned(p) ||
      p.gamma == nullptr || p.beta == nullptr) {
    return cudaErrorInvalidValue;
  }
  CUtensorMap x_map, out_map, residual_map{};
  if (const cudaError_t err = make_tensor_map_2d(p.type, p.x, p.rows, p.k, p.ldx, kALoadRows, &x_map);
      err != cudaSuccess) {
    return err;
  }
  if (const cudaError_t err = make_tensor_map_2d(p.type, p.out, p.rows, kWidth, p.ldo, kBlockM, &out_map);
      err != cudaSuccess) {
    return err;
  }
  if (p.residual != nullptr) {
    if (const cudaError_t err = make_tensor_map_2d(p.type, p.residual, p.rows, kWidth, p.ldr, kBlockM, &residual_map);
        err != cudaSuccess) {
      return err;
    }
  }
  const auto& w_map = *reinterpret_cast<const CUtensorMap*>(w.bytes);
  if (p.type == ElemType::kBF16) return launch_typed<__nv_bfloat16>(p, x_map, w_map, residual_map, out_map, stream);
  return launch_typed<__half>(p, x_map, w_map, residual_map, out_map, stream);
}

}  // namespace embd::backend::cuda
