// cuBLASLt matmuls for Linear layers: y[M, N] = epilogue(x[M, K] W^T) with W [N, K] row-major.
//
// In cuBLASLt's column-major terms this is D[N x M] = op(A) B with A = W seen as [K x N]
// (ld K) transposed, B = x seen as [K x M] (ld = x's row stride), D = y seen as [N x M]. F16 and
// BF16 accumulate in F32 (CUBLAS_COMPUTE_32F); F32 is exact FP32 unless TF32 is allowed.
//
// A plan (descriptors + the heuristic's algorithm) is cached per problem shape, strides, dtype,
// epilogue and pointer alignment, so the heuristic runs once per shape. M is bucketed (rounded
// up to 3 significant bits): batches of every token count share a few plans, the layouts are set
// to the actual M before each call, and an M the bucket's algorithm refuses gets its own plan. Owned by one backend and
// used by its thread only (not thread-safe). Errors: kDeviceError / kOutOfMemory from CUDA, and
// kUnsupported when cuBLASLt has no algorithm for a problem (callers may retry without the
// epilogue).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "core/status.h"
#include "launch_common.h"

namespace embd::backend::cuda {

enum class GemmEpilogue : int { kNone, kBias, kRelu, kReluBias };

struct GemmProblem {
  ElemType type = ElemType::kF32;  // W, x, y (and the bias when the epilogue has one)
  long long m = 0;                 // tokens
  long long n = 0;                 // out features
  long long k = 0;                 // in features
  const void* w = nullptr;         // [n, k], row stride k
  const void* x = nullptr;         // [m, k], row stride ldx
  long long ldx = 0;
  void* y = nullptr;               // [m, n], row stride ldy; must not alias x
  long long ldy = 0;
  GemmEpilogue epilogue = GemmEpilogue::kNone;
  const void* bias = nullptr;      // [n], for kBias / kReluBias: of `type`, or F32 when bias_f32
  // The bias is F32 while y is F16/BF16 (CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE = CUDA_R_32F). Not
  // every cuBLASLt version offers this; run() then returns kUnsupported and remembers it.
  bool bias_f32 = false;
};

class LtGemm {
 public:
  // Creates the cuBLASLt handle and `workspaces` workspaces on the current device: one per stream
  // that runs GEMMs concurrently (a workspace must not be used by two GEMMs at once).
  static Result<std::unique_ptr<LtGemm>> create(bool allow_tf32, std::size_t workspaces = 1);
  ~LtGemm();
  LtGemm(const LtGemm&) = delete;
  LtGemm& operator=(const LtGemm&) = delete;

  // Enqueues the matmul on `stream`. kUnsupported when cuBLASLt has no algorithm for the problem,
  // or (problems with an epilogue only) when the chosen algorithm failed to launch; either outcome
  // is cached in the plan, so later calls return kUnsupported at once and nothing was enqueued.
  Status run(const GemmProblem& p, cudaStream_t stream, std::size_t workspace = 0);

 private:
  struct Plan;
  using Key = std::tuple<int, long long, long long, long long, long long, long long, int, bool, unsigned,
                         unsigned, unsigned, unsigned>;

  LtGemm() = default;
  // The cached plan for p (built on first use); keyed by p.m as given (the caller passes the
  // bucket of M) or, with exact_m, by exactly p.m.
  Result<Plan*> plan_for(const GemmProblem& p, bool exact_m);
  Status run_plan(Plan& plan, const GemmProblem& p, cudaStream_t stream, void* workspace);
  Status build_plan(const GemmProblem& p, Plan& plan);

  cublasLtHandle_t handle_ = nullptr;
  std::vector<void*> workspaces_;
  std::size_t workspace_bytes_ = 0;
  bool allow_tf32_ = false;
  std::map<Key, std::unique_ptr<Plan>> plans_;
};

}  // namespace embd::backend::cuda
