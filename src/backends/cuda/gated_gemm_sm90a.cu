// The fused gated-MLP projection (see gated_gemm_launch.h) for Hopper: TMA + wgmma, warp
// specialised and persistent.
//
// A block (3 warpgroups, one per SM) loops over output tiles of 128 rows x 128 outputs. Warpgroup
// 0 is the producer: one thread issues TMA loads of the x tile [128 x 64] and the interleaved
// weight tile [256 x 64] into a ring of kStages shared-memory stages (128-byte swizzle, the layout
// wgmma reads), signalling "full" mbarriers. Warpgroups 1 and 2 each own 64 rows: per stage they
// issue four m64n256k16 wgmmas (F32 accumulators in registers), then release the stage on its
// "empty" mbarrier. The producer runs ahead into the next tile while the consumers apply the GLU:
// accumulator column c (activated half) and c + 128 (other half) sit in the same thread.
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "device_util.cuh"
#include "gated_gemm_launch.h"

namespace embd::backend::cuda {
namespace {

constexpr int kBlockM = 128;
constexpr int kBlockN = kGatedGemmBlockN;  // weight rows per tile: 128 activated + 128 other
constexpr int kOutN = kBlockN / 2;         // outputs per tile
constexpr int kBlockK = kGatedGemmBlockK;  // 64 x 16 bits = one 128-byte swizzle row
constexpr int kStages = 4;
constexpr int kThreads = 384;
constexpr int kConsumerThreads = 256;
constexpr unsigned kATileBytes = kBlockM * kBlockK * 2;  // 16 KiB
constexpr unsigned kBTileBytes = kBlockN * kBlockK * 2;  // 32 KiB
constexpr unsigned kStageBytes = kATileBytes + kBTileBytes;
constexpr unsigned kSmemBytes = kStages * kStageBytes + 1024;  // + room to align to 1024

static_assert(sizeof(CUtensorMap) == sizeof(GatedGemmWeightMap), "CUtensorMap is 128 bytes");

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

__device__ __forceinline__ void mbar_init(std::uint64_t* bar, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_addr(bar)), "r"(count));
}

__device__ __forceinline__ void mbar_expect_tx(std::uint64_t* bar, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_addr(bar)), "r"(bytes)
               : "memory");
}

__device__ __forceinline__ void mbar_arrive(std::uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_addr(bar)) : "memory");
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

__device__ __forceinline__ void tma_load_2d(std::uint32_t dst, const CUtensorMap* map, int c0, int c1,
                                            std::uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];" ::
          "r"(dst),
      "l"(reinterpret_cast<std::uint64_t>(map)), "r"(c0), "r"(c1), "r"(smem_addr(bar))
      : "memory");
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

template <ActKind Act>
__device__ __forceinline__ float gate(float g, float u) {
  return activate(g, Act) * u;  // Act is a constant here: the switch folds away
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

template <typename T, ActKind Act>
__global__ void __launch_bounds__(kThreads, 1)
    gated_gemm_kernel(const __grid_constant__ CUtensorMap x_map, const __grid_constant__ CUtensorMap w_map,
                      T* __restrict__ out, long long ldo, int rows, int k_blocks, int tiles_n, int tiles) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ unsigned char smem_raw[];
  __shared__ alignas(8) std::uint64_t full[kStages];
  __shared__ alignas(8) std::uint64_t empty[kStages];
  const std::uint32_t base = (smem_addr(smem_raw) + 1023u) & ~1023u;
  const int warpgroup = static_cast<int>(threadIdx.x) / 128;

  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(&full[s], 1);
      mbar_init(&empty[s], kConsumerThreads);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
  }
  __syncthreads();

  if (warpgroup == 0) {  // producer
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;");
    if (threadIdx.x == 0) {
      int it = 0;
      for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        const int m0 = (tile / tiles_n) * kBlockM, n0 = (tile % tiles_n) * kBlockN;
        for (int kb = 0; kb < k_blocks; ++kb, ++it) {
          const int s = it % kStages;
          // A fresh barrier counts as having completed the phase before phase 0.
          mbar_wait(&empty[s], ((it / kStages) & 1) ^ 1);
          mbar_expect_tx(&full[s], kStageBytes);
          const std::uint32_t a = base + static_cast<std::uint32_t>(s) * kStageBytes;
          tma_load_2d(a, &x_map, kb * kBlockK, m0, &full[s]);  // rows past T read as zeros
          tma_load_2d(a + kATileBytes, &w_map, kb * kBlockK, n0, &full[s]);
        }
      }
    }
    return;
  }

  asm volatile("setmaxnreg.inc.sync.aligned.u32 232;");
  const int consumer = warpgroup - 1;
  const int warp = (static_cast<int>(threadIdx.x) % 128) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  float d[16][8];
  int it = 0;
  for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int slab = (tile / tiles_n) * kBlockM + consumer * 64;  // this warpgroup's first row
    if (slab >= rows) {  // all 64 rows past T (a short batch): nothing to multiply or store
      for (int kb = 0; kb < k_blocks; ++kb, ++it) {
        mbar_wait(&full[it % kStages], (it / kStages) & 1);
        mbar_arrive(&empty[it % kStages]);
      }
      continue;
    }
    // One k-block's wgmmas stay in flight while the next are issued; a stage is released once
    // the wgmmas reading it have completed.
    int previous = -1;
    for (int kb = 0; kb < k_blocks; ++kb, ++it) {
      const int s = it % kStages;
      mbar_wait(&full[s], (it / kStages) & 1);
      const std::uint32_t a = base + static_cast<std::uint32_t>(s) * kStageBytes + consumer * (64 * 128);
      const std::uint32_t b = base + static_cast<std::uint32_t>(s) * kStageBytes + kATileBytes;
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < kBlockK / 16; ++kk) {
        wgmma_256<T>(d, smem_desc(a + kk * 32), smem_desc(b + kk * 32), kb > 0 || kk > 0);
      }
      wgmma_commit();
      wgmma_wait<1>();
      if (previous >= 0) mbar_arrive(&empty[previous]);
      previous = s;
    }
    wgmma_wait<0>();
    mbar_arrive(&empty[previous]);
    // GLU epilogue: accumulator groups 0-7 are the activated half, 8-15 the matching other half.
    const int row0 = slab + warp * 16 + lane / 4;
    const long long col0 = static_cast<long long>(tile % tiles_n) * kOutN + 2 * (lane % 4);
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int row = row0 + 8 * half;
      if (row >= rows) continue;
      T* dst = out + static_cast<long long>(row) * ldo + col0;
#pragma unroll
      for (int g = 0; g < 8; ++g) {
#pragma unroll
        for (int right = 0; right < 2; ++right) {
          const int e = 2 * half + 4 * right;
          *reinterpret_cast<std::uint32_t*>(dst + g * 16 + 8 * right) =
              pack2<T>(gate<Act>(d[g][e], d[g + 8][e]), gate<Act>(d[g][e + 1], d[g + 8][e + 1]));
        }
      }
    }
  }
#else
  (void)x_map, (void)w_map, (void)out, (void)ldo, (void)rows, (void)k_blocks, (void)tiles_n, (void)tiles;
  __trap();  // built without sm_90a; gated_gemm_supported() keeps this from being launched
#endif
}

PFN_cuTensorMapEncodeTiled_v12000 encode_tiled() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = nullptr;
  static std::once_flag once;
  std::call_once(once, [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q) ==
            cudaSuccess &&
        q == cudaDriverEntryPointSuccess) {
      fn = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
    }
  });
  return fn;
}

// A 2-D row-major [rows, cols] 16-bit matrix read in boxes of box_rows x 64 with 128-byte swizzle.
cudaError_t make_map(ElemType type, const void* data, long long rows, long long cols, long long ld,
                     unsigned box_rows, CUtensorMap* map) {
  const auto fn = encode_tiled();
  if (fn == nullptr) return cudaErrorNotSupported;
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(ld) * 2};
  const cuuint32_t box[2] = {static_cast<cuuint32_t>(kBlockK), box_rows};
  const cuuint32_t elem_strides[2] = {1, 1};
  const CUresult r = fn(map, type == ElemType::kBF16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
                        2, const_cast<void*>(data), dims, strides, box, elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                        CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                        CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS ? cudaSuccess : cudaErrorInvalidValue;
}

// The kernel's shared memory is over the default 48 KiB limit. The attribute is held per device,
// so it is set once on each device the kernel runs on (executors of several GPUs race here).
template <typename T, ActKind Act>
cudaError_t allow_shared_memory() {
  int device = 0;
  if (const cudaError_t err = cudaGetDevice(&device); err != cudaSuccess) return err;
  static std::mutex mu;
  static std::vector<int> ready;
  std::lock_guard lock(mu);
  if (std::find(ready.begin(), ready.end(), device) != ready.end()) return cudaSuccess;
  const cudaError_t err = cudaFuncSetAttribute(gated_gemm_kernel<T, Act>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               static_cast<int>(kSmemBytes));
  if (err == cudaSuccess) ready.push_back(device);
  return err;
}

template <typename T, ActKind Act>
cudaError_t launch_typed(const GatedGemmParams& p, const CUtensorMap& x_map, const CUtensorMap& w_map,
                         cudaStream_t stream) {
  if (const cudaError_t err = allow_shared_memory<T, Act>(); err != cudaSuccess) return err;
  const long long tiles_n = p.inner / kOutN;
  const long long tiles = (p.rows + kBlockM - 1) / kBlockM * tiles_n;
  const long long grid = std::min<long long>(tiles, p.sm_count > 0 ? p.sm_count : 132);
  gated_gemm_kernel<T, Act><<<static_cast<unsigned>(grid), kThreads, kSmemBytes, stream>>>(
      x_map, w_map, static_cast<T*>(p.out), p.ldo, static_cast<int>(p.rows), static_cast<int>(p.k / kBlockK),
      static_cast<int>(tiles_n), static_cast<int>(tiles));
  return cudaGetLastError();
}

}  // namespace

bool gated_gemm_supported(int cc_major, int cc_minor, ElemType type, long long k, long long inner, ActKind act) {
  return cc_major == 9 && cc_minor == 0 && (type == ElemType::kF16 || type == ElemType::kBF16) && k > 0 &&
         k % kBlockK == 0 && inner > 0 && inner % kOutN == 0 &&
         (act == ActKind::kGeluErf || act == ActKind::kRelu) && encode_tiled() != nullptr;
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
  return make_map(type, w, 2 * inner, k, k, kBlockN, reinterpret_cast<CUtensorMap*>(out->bytes));
}

bool gated_gemm_aligned(const GatedGemmParams& p) {
  return reinterpret_cast<std::uintptr_t>(p.x) % 16 == 0 && (p.ldx * 2) % 16 == 0 &&
         reinterpret_cast<std::uintptr_t>(p.out) % 4 == 0 && p.ldo % 2 == 0;
}

cudaError_t launch_gated_gemm(const GatedGemmParams& p, const GatedGemmWeightMap& w, cudaStream_t stream) {
  if (p.rows <= 0) return cudaSuccess;
  if (p.rows > 0x7fffffffLL || p.k % kBlockK != 0 || p.inner % kOutN != 0 || !gated_gemm_aligned(p)) {
    return cudaErrorInvalidValue;
  }
  CUtensorMap x_map;
  const cudaError_t err = make_map(p.type, p.x, p.rows, p.k, p.ldx, kBlockM, &x_map);
  if (err != cudaSuccess) return err;
  const auto& w_map = *reinterpret_cast<const CUtensorMap*>(w.bytes);
  const bool gelu = p.act == ActKind::kGeluErf;
  if (p.type == ElemType::kBF16) {
    return gelu ? launch_typed<__nv_bfloat16, ActKind::kGeluErf>(p, x_map, w_map, stream)
                : launch_typed<__nv_bfloat16, ActKind::kRelu>(p, x_map, w_map, stream);
  }
  return gelu ? launch_typed<__half, ActKind::kGeluErf>(p, x_map, w_map, stream)
              : launch_typed<__half, ActKind::kRelu>(p, x_map, w_map, stream);
}

}  // namespace embd::backend::cuda
