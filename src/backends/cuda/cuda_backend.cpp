#include "backends/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "attention_launch.h"
#include "cuda_status.h"
#include "gemm.h"
#include "norm_launch.h"
#include "pointwise_launch.h"

namespace embd::backend::cuda {
namespace {

static_assert(static_cast<int>(ElemType::kF32) == static_cast<int>(DType::kF32));
static_assert(static_cast<int>(ElemType::kF16) == static_cast<int>(DType::kF16));
static_assert(static_cast<int>(ElemType::kBF16) == static_cast<int>(DType::kBF16));
static_assert(static_cast<int>(ActKind::kNone) == static_cast<int>(Activation::kNone));
static_assert(static_cast<int>(ActKind::kGeluErf) == static_cast<int>(Activation::kGeluErf));
static_assert(static_cast<int>(ActKind::kRelu) == static_cast<int>(Activation::kRelu));

ElemType elem(DType t) { return static_cast<ElemType>(static_cast<int>(t)); }
ActKind act_kind(Activation a) { return static_cast<ActKind>(static_cast<int>(a)); }

std::string dims(const Mat& m) {
  std::string s("[");
  s += std::to_string(m.rows);
  s += ", ";
  s += std::to_string(m.cols);
  s += "] ";
  s += dtype_name(m.dtype);
  return s;
}

// A Linear weight resident on one GPU. The bias is kept in F32 (applied by embd's epilogue
// kernel), plus, when it converts losslessly, in the compute dtype for cuBLASLt's fused bias
// epilogue (cuBLASLt wants the bias in the output dtype); both give the same sums.
class CudaLinearWeight final : public LinearWeight {
 public:
  const void* owner = nullptr;
  DeviceMemory weight;
  DeviceMemory bias_f32;
  DeviceMemory bias_typed;         // compute dtype; empty when lossy (or when dtype is F32)
  const void* bias_lt = nullptr;   // bias for the cuBLASLt epilogue, or null
};

class CudaBackend final : public Backend {
 public:
  static Result<std::unique_ptr<Backend>> create(int device, const CudaBackendOptions& options);
  ~CudaBackend() override;

  std::string name() const override { return "cuda:" + std::to_string(device_); }
  std::string description() const override;
  bool supports(Op op, DType dtype) const override;
  DType preferred_dtype(DType stored) const override { return stored; }

  Result<DeviceMemory> allocate(std::size_t bytes) override;
  Status upload(void* dst_device, const void* src_host, std::size_t bytes) override;
  Status download(void* dst_host, const void* src_device, std::size_t bytes) override;
  Status synchronize() override;

  Result<std::unique_ptr<LinearWeight>> prepare_linear(const HostTensor& weight, const HostTensor* bias,
                                                       DType compute_dtype) override;
  Status linear(const LinearArgs& a) override;
  Status embed_layernorm(const EmbedLayerNormArgs& a) override;
  Status add_layernorm(const AddLayerNormArgs& a) override;
  Status glu(const GluArgs& a) override;
  Status attention(const AttentionArgs& a) override;
  Status pool(const PoolArgs& a) override;

  cudaStream_t stream() const { return stream_; }

 protected:
  void release(void* ptr) override;

 private:
  CudaBackend(int device, const CudaBackendOptions& options) : device_(device), options_(options) {}
  Status set_device() const;
  Status launched(cudaError_t err, const std::string& what) const;
  Status prepare_bias(CudaLinearWeight& w, const HostTensor& bias, DType compute_dtype);

  int device_;
  CudaBackendOptions options_;
  cudaDeviceProp props_{};
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<LtGemm> gemm_;
};

Result<std::unique_ptr<Backend>> CudaBackend::create(int device, const CudaBackendOptions& options) {
  const int count = device_count();
  if (device < 0 || device >= count) {
    return invalid_argument("device 'cuda:" + std::to_string(device) + "': no such GPU (" +
                            std::to_string(count) + " visible)");
  }
  std::unique_ptr<CudaBackend> b(new CudaBackend(device, options));
  const std::string where = "cuda:" + std::to_string(device);
  EMBD_TRY(b->set_device());
  EMBD_CUDA_TRY(cudaGetDeviceProperties(&b->props_, device), where + ": cudaGetDeviceProperties");
  if (b->props_.major < 8) {
    return unsupported(where + " (" + b->props_.name + "): compute capability " +
                       std::to_string(b->props_.major) + "." + std::to_string(b->props_.minor) +
                       "; embd's CUDA kernels need 8.0 or newer");
  }
  EMBD_CUDA_TRY(cudaStreamCreateWithFlags(&b->stream_, cudaStreamNonBlocking), where + ": stream");
  EMBD_ASSIGN_OR_RETURN(b->gemm_, LtGemm::create(options.allow_tf32));
  return std::unique_ptr<Backend>(std::move(b));
}

CudaBackend::~CudaBackend() {
  if (cudaSetDevice(device_) != cudaSuccess) return;  // driver gone: nothing to release safely
  if (stream_) cudaStreamSynchronize(stream_);
  gemm_.reset();
  if (stream_) cudaStreamDestroy(stream_);
  (void)cudaGetLastError();
}

std::string CudaBackend::description() const {
  char mem[32];
  std::snprintf(mem, sizeof(mem), "%.1f", static_cast<double>(props_.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
  std::string s(props_.name);
  s += " (sm_" + std::to_string(props_.major) + std::to_string(props_.minor) + ", ";
  s += std::to_string(props_.multiProcessorCount) + " SMs, " + mem + " GiB, cuBLASLt ";
  s += std::to_string(cublasLtGetVersion()) + ")";
  return s;
}

bool CudaBackend::supports(Op op, DType dtype) const {
  (void)dtype;  // every op runs in F32, F16 and BF16
  return op != Op::kCount;
}

Status CudaBackend::set_device() const {
  EMBD_CUDA_TRY(cudaSetDevice(device_), name() + ": cudaSetDevice");
  // Clear a stale non-sticky error (from an earlier failed call) so launch checks below report
  // only their own launch.
  (void)cudaGetLastError();
  return ok_status();
}

Status CudaBackend::launched(cudaError_t err, const std::string& what) const {
  if (err == cudaErrorInvalidValue) {
    (void)cudaGetLastError();
    return unsupported(name() + ": " + what + ": shape outside what the CUDA kernels handle");
  }
  return cuda_status(err, name() + ": " + what);
}

Result<DeviceMemory> CudaBackend::allocate(std::size_t bytes) {
  EMBD_TRY(set_device());
  if (bytes == 0) return DeviceMemory(this, nullptr, 0);
  void* ptr = nullptr;
  const cudaError_t err = cudaMalloc(&ptr, bytes);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    std::size_t free_bytes = 0, total = 0;
    (void)cudaMemGetInfo(&free_bytes, &total);
    (void)cudaGetLastError();
    const std::string msg = name() + ": cannot allocate " + std::to_string(bytes) + " bytes (" +
                            std::to_string(free_bytes) + " of " + std::to_string(total) + " free): " +
                            cudaGetErrorString(err);
    if (err == cudaErrorMemoryAllocation) return Status(ErrorCode::kOutOfMemory, msg);
    return device_error(msg);
  }
  return DeviceMemory(this, ptr, bytes);
}

void CudaBackend::release(void* ptr) {
  if (cudaSetDevice(device_) != cudaSuccess) return;
  (void)cudaFree(ptr);  // implicitly waits for the device, so no kernel still reads ptr
  (void)cudaGetLastError();
}

Status CudaBackend::upload(void* dst_device, const void* src_host, std::size_t bytes) {
  EMBD_TRY(set_device());
  if (bytes == 0) return ok_status();
  // On our stream (ordered before later kernels), then wait: the caller may free src_host.
  EMBD_CUDA_TRY(cudaMemcpyAsync(dst_device, src_host, bytes, cudaMemcpyHostToDevice, stream_),
                name() + ": upload of " + std::to_string(bytes) + " bytes");
  EMBD_CUDA_TRY(cudaStreamSynchronize(stream_), name() + ": upload of " + std::to_string(bytes) + " bytes");
  return ok_status();
}

Status CudaBackend::download(void* dst_host, const void* src_device, std::size_t bytes) {
  EMBD_TRY(set_device());
  if (bytes == 0) return synchronize();
  // Stream-ordered after every kernel enqueued so far.
  EMBD_CUDA_TRY(cudaMemcpyAsync(dst_host, src_device, bytes, cudaMemcpyDeviceToHost, stream_),
                name() + ": download of " + std::to_string(bytes) + " bytes");
  EMBD_CUDA_TRY(cudaStreamSynchronize(stream_), name() + ": download of " + std::to_string(bytes) + " bytes");
  return ok_status();
}

Status CudaBackend::synchronize() {
  EMBD_TRY(set_device());
  EMBD_CUDA_TRY(cudaStreamSynchronize(stream_), name() + ": synchronize");
  return ok_status();
}

Status CudaBackend::prepare_bias(CudaLinearWeight& w, const HostTensor& bias, DType compute_dtype) {
  const auto n = static_cast<std::size_t>(bias.numel());
  std::vector<float> f32(n);
  convert(bias.data, bias.dtype, f32.data(), DType::kF32, n);
  EMBD_ASSIGN_OR_RETURN(w.bias_f32, allocate(n * sizeof(float)));
  EMBD_TRY(upload(w.bias_f32.get(), f32.data(), n * sizeof(float)));
  if (compute_dtype == DType::kF32) {
    w.bias_lt = w.bias_f32.get();
    return ok_status();
  }
  std::vector<std::uint16_t> typed(n);
  std::vector<float> back(n);
  convert(f32.data(), DType::kF32, typed.data(), compute_dtype, n);
  convert(typed.data(), compute_dtype, back.data(), DType::kF32, n);
  if (std::memcmp(back.data(), f32.data(), n * sizeof(float)) != 0) return ok_status();  // lossy
  EMBD_ASSIGN_OR_RETURN(w.bias_typed, allocate(n * 2));
  EMBD_TRY(upload(w.bias_typed.get(), typed.data(), n * 2));
  w.bias_lt = w.bias_typed.get();
  return ok_status();
}

Result<std::unique_ptr<LinearWeight>> CudaBackend::prepare_linear(const HostTensor& weight,
                                                                  const HostTensor* bias,
                                                                  DType compute_dtype) {
  EMBD_TRY(set_device());
  if (weight.shape.size() != 2 || weight.shape[0] <= 0 || weight.shape[1] <= 0 || weight.data == nullptr) {
    return invalid_argument("linear weight '" + weight.name + "': expected a non-empty [out, in] matrix, got " +
                            weight.shape_string());
  }
  auto w = std::make_unique<CudaLinearWeight>();
  w->owner = this;
  w->out_features = weight.shape[0];
  w->in_features = weight.shape[1];
  w->dtype = compute_dtype;
  EMBD_ASSIGN_OR_RETURN(w->weight, upload_tensor(weight, compute_dtype));
  if (bias != nullptr) {
    if (bias->shape.size() != 1 || bias->shape[0] != w->out_features || bias->data == nullptr) {
      return invalid_argument("linear bias '" + bias->name + "': expected [" +
                              std::to_string(w->out_features) + "], got " + bias->shape_string());
    }
    w->has_bias = true;
    EMBD_TRY(prepare_bias(*w, *bias, compute_dtype));
  }
  return std::unique_ptr<LinearWeight>(std::move(w));
}

Status CudaBackend::linear(const LinearArgs& a) {
  EMBD_TRY(set_device());
  const auto* w = dynamic_cast<const CudaLinearWeight*>(a.weight);
  if (w == nullptr || w->owner != this) {
    return invalid_argument(name() + ": linear weight was not prepared by this backend");
  }
  if (a.x.dtype != w->dtype || a.y.dtype != w->dtype) {
    return invalid_argument(name() + ": linear x " + dims(a.x) + " / y " + dims(a.y) +
                            " do not match the weight dtype " + std::string(dtype_name(w->dtype)));
  }
  GemmProblem p;
  p.type = elem(w->dtype);
  p.m = a.x.rows;
  p.n = w->out_features;
  p.k = w->in_features;
  p.w = w->weight.get();
  p.x = a.x.data;
  p.ldx = a.x.ld;
  p.y = a.y.data;
  p.ldy = a.y.ld;
  const bool relu = a.activation == Activation::kRelu;
  const bool lt_bias = w->has_bias && w->bias_lt != nullptr;
  if (lt_bias) {
    p.epilogue = relu ? GemmEpilogue::kReluBias : GemmEpilogue::kBias;
    p.bias = w->bias_lt;
  } else if (relu && !w->has_bias) {
    p.epilogue = GemmEpilogue::kRelu;
  }
  Status st = gemm_->run(p, stream_);
  if (st.code() == ErrorCode::kUnsupported && p.epilogue != GemmEpilogue::kNone) {
    p.epilogue = GemmEpilogue::kNone;  // no fused algorithm: plain GEMM + embd's epilogue
    p.bias = nullptr;
    st = gemm_->run(p, stream_);
  }
  if (!st.ok()) return st.with_context(name());
  // What cuBLASLt did not apply: the F32 bias and/or the activation (erf GELU always).
  const bool bias_done = p.epilogue == GemmEpilogue::kBias || p.epilogue == GemmEpilogue::kReluBias;
  const bool relu_done = p.epilogue == GemmEpilogue::kRelu || p.epilogue == GemmEpilogue::kReluBias;
  const float* post_bias = (w->has_bias && !bias_done) ? w->bias_f32.as<const float>() : nullptr;
  ActKind post_act = act_kind(a.activation);
  if (relu && relu_done) post_act = ActKind::kNone;
  if (post_bias == nullptr && post_act == ActKind::kNone) return ok_status();
  return launched(launch_bias_act(p.type, a.y.data, p.m, p.n, p.ldy, post_bias, post_act, stream_),
                  "linear epilogue");
}

Status CudaBackend::embed_layernorm(const EmbedLayerNormArgs& a) {
  EMBD_TRY(set_device());
  const DType table = a.word_table.dtype;
  if ((a.type_table.data != nullptr && a.type_table.dtype != table) ||
      (a.position_table.data != nullptr && a.position_table.dtype != table)) {
    return unsupported(name() + ": embed_layernorm needs one dtype for all embedding tables");
  }
  EmbedLnParams p;
  p.ids = a.ids;
  p.type_ids = a.type_ids;
  p.positions = a.positions;
  p.tokens = a.tokens;
  p.width = a.out.cols;
  p.table_type = elem(table);
  p.word = a.word_table.data;
  p.word_ld = a.word_table.ld;
  p.type_table = a.type_table.data;
  p.type_ld = a.type_table.ld;
  p.pos_table = a.position_table.data;
  p.pos_ld = a.position_table.ld;
  p.gamma = a.gamma;
  p.beta = a.beta;
  p.eps = a.eps;
  p.out_type = elem(a.out.dtype);
  p.out = a.out.data;
  p.out_ld = a.out.ld;
  return launched(launch_embed_layernorm(p, stream_),
                  "embed_layernorm " + dims(a.out) + " (at most " + std::to_string(kMaxNormWidth) +
                      " features)");
}

Status CudaBackend::add_layernorm(const AddLayerNormArgs& a) {
  EMBD_TRY(set_device());
  if (a.out.dtype != a.x.dtype || (a.residual.data != nullptr && a.residual.dtype != a.x.dtype)) {
    return invalid_argument(name() + ": add_layernorm x " + dims(a.x) + ", residual " + dims(a.residual) +
                            ", out " + dims(a.out) + ": dtypes differ");
  }
  AddLnParams p;
  p.type = elem(a.x.dtype);
  p.rows = a.x.rows;
  p.width = a.x.cols;
  p.x = a.x.data;
  p.x_ld = a.x.ld;
  p.residual = a.residual.data;
  p.residual_ld = a.residual.ld;
  p.gamma = a.gamma;
  p.beta = a.beta;
  p.eps = a.eps;
  p.out = a.out.data;
  p.out_ld = a.out.ld;
  return launched(launch_add_layernorm(p, stream_),
                  "add_layernorm " + dims(a.x) + " (at most " + std::to_string(kMaxNormWidth) + " features)");
}

Status CudaBackend::glu(const GluArgs& a) {
  EMBD_TRY(set_device());
  if (a.in.dtype != a.out.dtype) {
    return invalid_argument(name() + ": glu in " + dims(a.in) + " / out " + dims(a.out) + ": dtypes differ");
  }
  GluParams p;
  p.type = elem(a.in.dtype);
  p.rows = a.in.rows;
  p.inner = a.out.cols;
  p.in = a.in.data;
  p.in_ld = a.in.ld;
  p.out = a.out.data;
  p.out_ld = a.out.ld;
  p.activate_first_half = a.activate_first_half;
  p.act = act_kind(a.activation);
  return launched(launch_glu(p, stream_), "glu " + dims(a.in));
}

Status CudaBackend::attention(const AttentionArgs& a) {
  EMBD_TRY(set_device());
  if (!attention_head_dim_supported(a.head_dim)) {
    return unsupported(name() + ": attention head_dim " + std::to_string(a.head_dim) +
                       " (the CUDA kernels handle 8, 16, 32, 64 and 128)");
  }
  if (a.qkv.dtype != a.out.dtype) {
    return invalid_argument(name() + ": attention qkv " + dims(a.qkv) + " / out " + dims(a.out) +
                            ": dtypes differ");
  }
  AttentionParams p;
  p.type = elem(a.qkv.dtype);
  p.qkv = a.qkv.data;
  p.qkv_ld = a.qkv.ld;
  p.out = a.out.data;
  p.out_ld = a.out.ld;
  p.cu_seqlens = a.cu_seqlens;
  p.batch = a.batch;
  p.max_seqlen = a.max_seqlen;
  if (a.cu_seqlens_host != nullptr) {  // the grid must cover the longest sequence
    for (std::int64_t b = 0; b < a.batch; ++b) {
      p.max_seqlen = std::max<long long>(p.max_seqlen, a.cu_seqlens_host[b + 1] - a.cu_seqlens_host[b]);
    }
  }
  p.num_heads = a.num_heads;
  p.head_dim = a.head_dim;
  p.scale = a.scale;
  p.alibi_slopes = a.alibi_slopes;
  const std::string what = "attention qkv " + dims(a.qkv) + ", " + std::to_string(a.batch) +
                           " sequences of at most " + std::to_string(p.max_seqlen) + " tokens";
  if (!options_.portable_attention && attention_mma_applicable(p)) {
    return launched(launch_attention_mma(p, stream_), what);
  }
  return launched(launch_attention_simple(p, stream_), what);
}

Status CudaBackend::pool(const PoolArgs& a) {
  EMBD_TRY(set_device());
  PoolParams p;
  p.type = elem(a.hidden.dtype);
  p.hidden = a.hidden.data;
  p.width = a.hidden.cols;
  p.ld = a.hidden.ld;
  p.cu_seqlens = a.cu_seqlens;
  p.batch = a.batch;
  p.mean = a.mode == PoolMode::kMean;
  p.out = a.out;
  return launched(launch_pool(p, stream_), "pool " + dims(a.hidden));
}

}  // namespace

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();  // no driver / no GPU: not an error for callers
    return 0;
  }
  return count;
}

Result<std::unique_ptr<Backend>> make_cuda_backend(int device) {
  return CudaBackend::create(device, CudaBackendOptions{});
}

Result<std::unique_ptr<Backend>> make_cuda_backend(int device, const CudaBackendOptions& options) {
  return CudaBackend::create(device, options);
}

void* native_stream(Backend& backend) {
  auto* cuda = dynamic_cast<CudaBackend*>(&backend);
  return cuda != nullptr ? static_cast<void*>(cuda->stream()) : nullptr;
}

}  // namespace embd::backend::cuda
