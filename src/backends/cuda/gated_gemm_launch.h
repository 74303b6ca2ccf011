// Launcher for the fused gated MLP input projection (gated_gemm_sm90a.cu), Hopper only:
//
//   out[T, I] = act(x W_gate^T) * (x W_up^T)      x [T, K], W_gate and W_up [I, K], no bias
//
// One tensor-core GEMM (wgmma, operands fetched by TMA) whose epilogue applies the GLU to the F32
// accumulators, so the [T, 2I] projection never reaches memory: cuBLASLt + the GLU kernel write
// and re-read it (2 x 4 bytes per GLU output at 16 bits).
//
// The weight is stored interleaved (interleave_gated_rows): blocks of kGatedGemmBlockN rows hold
// kGatedGemmBlockN / 2 rows of the activated half, then the matching rows of the other half, so
// that one 256-column accumulator tile holds both factors of 128 outputs in the same thread.
#pragma once

#include <cstddef>
#include <cstdint>

#include "launch_common.h"

namespace embd::backend::cuda {

constexpr int kGatedGemmBlockN = 256;  // interleave granularity (rows of the stored weight)
constexpr int kGatedGemmBlockK = 64;   // K must be a multiple of this

// Whether the kernel exists for this device (built for sm_90a; compute capability 9.0) and
// these sizes: F16/BF16, K % 64 == 0, I % 128 == 0, GELU (erf) or ReLU.
bool gated_gemm_supported(int cc_major, int cc_minor, ElemType type, long long k, long long inner,
                          ActKind act);

// The destination row of each source row of a [2I, K] weight whose activated half is the first
// (activate_first_half) or second: dst[src] for src in [0, 2I).
void interleave_gated_rows(long long inner, bool activate_first_half, std::int64_t* dst_of_src);

// A TMA descriptor (CUtensorMap: 128 bytes, 64-byte aligned) for the interleaved weight, built
// once when the weight is prepared.
struct alignas(64) GatedGemmWeightMap {
  unsigned char bytes[128];
};
cudaError_t make_gated_gemm_weight_map(ElemType type, const void* w, long long inner, long long k,
                                       GatedGemmWeightMap* out);

struct GatedGemmParams {
  ElemType type = ElemType::kF16;
  long long rows = 0;   // T
  long long k = 0;      // K
  long long inner = 0;  // I
  const void* x = nullptr;  // [T, K], row stride ldx; 16-byte aligned, ldx * 2 a multiple of 16
  long long ldx = 0;
  void* out = nullptr;  // [T, I], row stride ldo; 4-byte aligned, ldo even
  long long ldo = 0;
  ActKind act = ActKind::kGeluErf;
  int sm_count = 0;     // persistent grid size
  // Launch early (early_launch.cuh; the backend sets it on sm_90+).
  bool early_launch = false;
};
// Whether x / out meet the alignment above.
bool gated_gemm_aligned(const GatedGemmParams& p);
cudaError_t launch_gated_gemm(const GatedGemmParams& p, const GatedGemmWeightMap& w, cudaStream_t stream);

}  // namespace embd::backend::cuda
