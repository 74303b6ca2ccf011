#include "gemm.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "cuda_status.h"

namespace embd::backend::cuda {
namespace {

constexpr std::size_t kWorkspaceBytes = 32u << 20;
constexpr std::size_t kMaxPlans = 2048;  // bound the cache in long-running servers

cudaDataType_t cuda_type(ElemType t) {
  switch (t) {
    case ElemType::kF16: return CUDA_R_16F;
    case ElemType::kBF16: return CUDA_R_16BF;
    case ElemType::kF32: break;
  }
  return CUDA_R_32F;
}

// Largest power of two (at most 256) dividing the address: cuBLASLt picks kernels by it.
unsigned alignment_of(const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  unsigned align = 256;
  while (align > 1 && (a % align) != 0) align >>= 1;
  return align;
}

cublasLtEpilogue_t lt_epilogue(GemmEpilogue e) {
  switch (e) {
    case GemmEpilogue::kBias: return CUBLASLT_EPILOGUE_BIAS;
    case GemmEpilogue::kRelu: return CUBLASLT_EPILOGUE_RELU;
    case GemmEpilogue::kReluBias: return CUBLASLT_EPILOGUE_RELU_BIAS;
    case GemmEpilogue::kNone: break;
  }
  return CUBLASLT_EPILOGUE_DEFAULT;
}

bool has_bias(GemmEpilogue e) { return e == GemmEpilogue::kBias || e == GemmEpilogue::kReluBias; }

std::string shape_text(const GemmProblem& p) {
  return "linear [" + std::to_string(p.m) + " x " + std::to_string(p.k) + "] x [" +
         std::to_string(p.n) + " x " + std::to_string(p.k) + "]^T";
}

// The M a plan is built for: M rounded up to 3 significant bits (at most 25% more, about four
// buckets per power of two). Varying batch sizes (every mixed batch has its own token count)
// then share a few plans instead of each paying for cuBLASLt's heuristic.
long long m_bucket(long long m) {
  if (m <= 8) return 8;
  long long top = 1;
  while (top * 2 <= m) top *= 2;
  const long long step = top / 4;
  return (m + step - 1) / step * step;
}

}  // namespace

struct LtGemm::Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool found = false;  // false: cuBLASLt offered no algorithm (cached so we ask once)
  long long m = 0;     // the M the layouts b and d describe now

  ~Plan() {
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

Result<std::unique_ptr<LtGemm>> LtGemm::create(bool allow_tf32, std::size_t workspaces) {
  std::unique_ptr<LtGemm> g(new LtGemm());
  g->allow_tf32_ = allow_tf32;
  EMBD_CUBLAS_TRY(cublasLtCreate(&g->handle_), "cublasLtCreate");
  for (std::size_t i = 0; i < std::max<std::size_t>(workspaces, 1); ++i) {
    void* ws = nullptr;
    EMBD_CUDA_TRY(cudaMalloc(&ws, kWorkspaceBytes),
                  "cudaMalloc of a " + std::to_string(kWorkspaceBytes) + "-byte cuBLASLt workspace");
    g->workspaces_.push_back(ws);
  }
  g->workspace_bytes_ = kWorkspaceBytes;
  return g;
}

LtGemm::~LtGemm() {
  plans_.clear();
  for (void* ws : workspaces_) cudaFree(ws);
  if (handle_) cublasLtDestroy(handle_);
}

Status LtGemm::build_plan(const GemmProblem& p, Plan& plan) {
  plan.m = p.m;
  const cudaDataType_t t = cuda_type(p.type);
  const cublasComputeType_t compute = (p.type == ElemType::kF32 && allow_tf32_)
                                          ? CUBLAS_COMPUTE_32F_FAST_TF32
                                          : CUBLAS_COMPUTE_32F;
  const std::string what = shape_text(p);
  EMBD_CUBLAS_TRY(cublasLtMatmulDescCreate(&plan.op, compute, CUDA_R_32F), what + ": matmul desc");
  const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
  EMBD_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a,
                                                 sizeof(trans_a)), what + ": transa");
  EMBD_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b,
                                                 sizeof(trans_b)), what + ": transb");
  const cublasLtEpilogue_t epi = lt_epilogue(p.epilogue);
  EMBD_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi,
                                                 sizeof(epi)), what + ": epilogue");
  if (has_bias(p.epilogue)) {
    // The heuristic reads the bias pointer's alignment; the type is the output type by default.
    EMBD_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                   &p.bias, sizeof(p.bias)), what + ": bias");
    if (p.bias_f32 && p.type != ElemType::kF32) {
      const std::int32_t bias_type = CUDA_R_32F;
      const cublasStatus_t st = cublasLtMatmulDescSetAttribute(
          plan.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof(bias_type));
      if (st != CUBLAS_STATUS_SUCCESS) {  // attribute unknown to this cuBLASLt: no such plan
        plan.found = false;
        return ok_status();
      }
    }
  }
  EMBD_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&plan.a, t, static_cast<std::uint64_t>(p.k),
                                             static_cast<std::uint64_t>(p.n), p.k), what + ": layout W");
  EMBD_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&plan.b, t, static_cast<std::uint64_t>(p.k),
                                             static_cast<std::uint64_t>(p.m), p.ldx), what + ": layout x");
  EMBD_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&plan.d, t, static_cast<std::uint64_t>(p.n),
                                             static_cast<std::uint64_t>(p.m), p.ldy), what + ": layout y");

  cublasLtMatmulPreference_t pref = nullptr;
  EMBD_CUBLAS_TRY(cublasLtMatmulPreferenceCreate(&pref), what + ": preference");
  struct PrefGuard {
    cublasLtMatmulPreference_t p;
    ~PrefGuard() { cublasLtMatmulPreferenceDestroy(p); }
  } guard{pref};
  const std::uint64_t ws = workspace_bytes_;
  EMBD_CUBLAS_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                       &ws, sizeof(ws)), what + ": workspace pref");
  const std::uint32_t align_a = alignment_of(p.w), align_b = alignment_of(p.x),
                      align_d = alignment_of(p.y);
  EMBD_CUBLAS_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                       &align_a, sizeof(align_a)), what + ": align A");
  EMBD_CUBLAS_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                       &align_b, sizeof(align_b)), what + ": align B");
  EMBD_CUBLAS_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                                       &align_d, sizeof(align_d)), what + ": align C");
  EMBD_CUBLAS_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                                       &align_d, sizeof(align_d)), what + ": align D");

  cublasLtMatmulHeuristicResult_t result{};
  int count = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle_, plan.op, plan.a, plan.b, plan.d,
                                                           plan.d, pref, 1, &result, &count);
  // An F32 bias for 16-bit output is optional in cuBLASLt: any refusal means "no such plan".
  const bool optional = has_bias(p.epilogue) && p.bias_f32 && p.type != ElemType::kF32;
  if (st == CUBLAS_STATUS_NOT_SUPPORTED || (st == CUBLAS_STATUS_SUCCESS && count == 0) ||
      (optional && (st != CUBLAS_STATUS_SUCCESS || result.state != CUBLAS_STATUS_SUCCESS))) {
    plan.found = false;
    return ok_status();
  }
  EMBD_CUBLAS_TRY(st, what + ": cublasLtMatmulAlgoGetHeuristic");
  EMBD_CUBLAS_TRY(result.state, what + ": heuristic result");
  plan.algo = result.algo;
  plan.found = true;
  return ok_status();
}

Result<LtGemm::Plan*> LtGemm::plan_for(const GemmProblem& p, bool exact_m) {
  // Exact-M plans are keyed by -M so they never collide with a bucket.
  const Key key{static_cast<int>(p.type), exact_m ? -p.m : p.m, p.n, p.k, p.ldx, p.ldy, static_cast<int>(p.epilogue),
                has_bias(p.epilogue) && p.bias_f32, alignment_of(p.w), alignment_of(p.x), alignment_of(p.y),
                has_bias(p.epilogue) ? alignment_of(p.bias) : 0u};
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second.get();
  if (plans_.size() >= kMaxPlans) plans_.clear();
  auto plan = std::make_unique<Plan>();
  EMBD_TRY(build_plan(p, *plan));
  Plan* raw = plan.get();
  plans_.emplace(key, std::move(plan));
  return raw;
}

Status LtGemm::run(const GemmProblem& p, cudaStream_t stream, std::size_t workspace) {
  if (p.m <= 0) return ok_status();
  if (workspace >= workspaces_.size()) {
    return internal_error(shape_text(p) + ": no cuBLASLt workspace " + std::to_string(workspace));
  }
  void* ws = workspaces_[workspace];
  GemmProblem bucketed = p;
  bucketed.m = m_bucket(p.m);
  EMBD_ASSIGN_OR_RETURN(Plan * plan, plan_for(bucketed, false));
  if (plan->found) {
    const Status s = run_plan(*plan, p, stream, ws);
    if (s.code() != ErrorCode::kUnsupported || bucketed.m == p.m) return s;
  }
  // The bucket's algorithm refused this M (or there was none): a plan for exactly this M.
  EMBD_ASSIGN_OR_RETURN(plan, plan_for(p, true));
  if (!plan->found) return unsupported(shape_text(p) + ": cuBLASLt offers no algorithm");
  return run_plan(*plan, p, stream, ws);
}

Status LtGemm::run_plan(Plan& plan, const GemmProblem& p, cudaStream_t stream, void* workspace) {
  if (plan.m != p.m) {  // the layouts follow the actual M; the algorithm stays
    const auto cols = static_cast<std::uint64_t>(p.m);
    EMBD_CUBLAS_TRY(cublasLtMatrixLayoutSetAttribute(plan.b, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof(cols)),
                    shape_text(p) + ": layout x");
    EMBD_CUBLAS_TRY(cublasLtMatrixLayoutSetAttribute(plan.d, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof(cols)),
                    shape_text(p) + ": layout y");
    plan.m = p.m;
  }
  if (has_bias(p.epilogue)) {
    EMBD_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                   &p.bias, sizeof(p.bias)), shape_text(p) + ": bias");
  }
  const float alpha = 1.0f, beta = 0.0f;
  const cublasStatus_t st = cublasLtMatmul(handle_, plan.op, &alpha, p.w, plan.a, p.x, plan.b, &beta,
                                           p.y, plan.d, p.y, plan.d, &plan.algo, workspace,
                                           workspace_bytes_, stream);
  if (st == CUBLAS_STATUS_NOT_SUPPORTED || st == CUBLAS_STATUS_INVALID_VALUE ||
      (p.epilogue != GemmEpilogue::kNone && st == CUBLAS_STATUS_EXECUTION_FAILED)) {
    // The algorithm does not run this problem (this M, or this epilogue): never use the plan
    // again. run() then tries a plan for exactly this M; linear() falls back to a plain GEMM
    // plus embd's epilogue kernel.
    (void)cudaGetLastError();
    plan.found = false;
    return unsupported(shape_text(p) + ": cublasLtMatmul refused the plan (" + cublasLtGetStatusName(st) + ")");
  }
  EMBD_CUBLAS_TRY(st, shape_text(p) + ": cublasLtMatmul");
  return ok_status();
}

}  // namespace embd::backend::cuda
