#include "backends/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "attention_launch.h"
#include "cuda_status.h"
#include "gated_gemm_launch.h"
#include "linear_layernorm_launch.h"
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
static_assert(kMaxAttentionRelativeReach == backend::kMaxRelativeReach);

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

// A Linear weight resident on one GPU. The bias is kept in F32 (for cuBLASLt's fused bias epilogue
// with CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE = F32, or embd's epilogue kernel), plus, when it
// converts losslessly, in the compute dtype (cuBLASLt's default bias type for 16-bit output, the
// first choice); all give the same sums.
class CudaLinearWeight final : public LinearWeight {
 public:
  const void* owner = nullptr;
  DeviceMemory weight;
  DeviceMemory bias_f32_mem;
  DeviceMemory bias_typed;         // compute dtype; empty when lossy (or when dtype is F32)
  const void* bias_lt = nullptr;   // bias in the output dtype for the cuBLASLt epilogue, or null
  // Whether cuBLASLt fused the bias the last time it was asked (-1: not asked yet). The backend's
  // one thread updates it; it decides defers_linear_bias().
  mutable int bias_fused = -1;
  // A gated projection stored for the fused kernel (rows interleaved; see gated_gemm_launch.h):
  // only gated_linear() may read it.
  bool gated_interleaved = false;
  GatedGemmWeightMap gated_map{};
  // A weight linear_layernorm() may run as one kernel (linear_layernorm_launch.h), with its map.
  bool layernorm_fusable = false;
  LinearLayerNormWeightMap layernorm_map{};
};

// y = x W^T for a weight on this device (no epilogue yet).
GemmProblem gemm_problem(const CudaLinearWeight& w, const Mat& x, const Mat& y) {
  GemmProblem p;
  p.type = elem(w.dtype);
  p.m = x.rows;
  p.n = w.out_features;
  p.k = w.in_features;
  p.w = w.weight.get();
  p.x = x.data;
  p.ldx = x.ld;
  p.y = y.data;
  p.ldy = y.ld;
  return p;
}

// out = GLU(in) for [T, 2I] in and [T, I] out of the same dtype.
GluParams glu_params(const Mat& in, const Mat& out, bool activate_first_half, Activation act) {
  GluParams p;
  p.type = elem(in.dtype);
  p.rows = in.rows;
  p.inner = out.cols;
  p.in = in.data;
  p.in_ld = in.ld;
  p.out = out.data;
  p.out_ld = out.ld;
  p.activate_first_half = activate_first_half;
  p.act = act_kind(act);
  return p;
}

// How the last linear() ran (for benchmarks; see linear_path()).
struct LinearPath {
  bool valid = false;
  GemmEpilogue epilogue = GemmEpilogue::kNone;  // what cuBLASLt applied
  bool bias_f32 = false;                        // ... with an F32 bias vector
  bool post_bias = false;                       // embd's kernel added the F32 bias
  ActKind post_act = ActKind::kNone;            // embd's kernel applied this activation
};

const char* epilogue_name(GemmEpilogue e) {
  switch (e) {
    case GemmEpilogue::kBias: return "BIAS";
    case GemmEpilogue::kRelu: return "RELU";
    case GemmEpilogue::kReluBias: return "RELU_BIAS";
    case GemmEpilogue::kNone: break;
  }
  return "DEFAULT";
}

const char* act_name(ActKind a) {
  switch (a) {
    case ActKind::kGeluErf: return "gelu_erf";
    case ActKind::kRelu: return "relu";
    case ActKind::kNone: break;
  }
  return "none";
}

// Uploads up to this size go through the pinned staging buffer without waiting; larger ones
// (weights at load time) copy synchronously so the pinned buffer stays small.
constexpr std::size_t kStagedUploadMax = 8u << 20;

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

  bool asynchronous() const override { return true; }
  Result<HostMemory> allocate_host(std::size_t bytes) override;
  Status download_async(void* dst_host, const void* src_device, std::size_t bytes) override;
  std::size_t streams() const override { return streams_.size(); }
  Status use_stream(std::size_t stream) override;
  Result<Fence> fence() override;
  Result<Mark> mark() override;
  Result<double> mark_seconds(Mark m) override;
  Status wait(Fence f) override;

  bool can_record() const override { return options_.graphs; }
  // Whether kernels that support it launch early (early_launch.cuh): sm_90+ and not turned off.
  bool early_launch() const { return options_.early_launch && props_.major >= 9; }
  Status begin_recording() override;
  Result<std::unique_ptr<Recording>> end_recording() override;
  Status replay(const Recording& r) override;

  Result<std::unique_ptr<LinearWeight>> prepare_linear(const HostTensor& weight, const HostTensor* bias,
                                                       DType compute_dtype) override;
  // A 16-bit output whose bias cuBLASLt does not fuse (not exact in that dtype, as cuBLASLt
  // refuses an F32 bias with 16-bit output, or refused for the shape) gets the bias in a pass
  // of its own: add it in the next LayerNorm or in attention instead.
  bool defers_linear_bias(const LinearWeight& w) const override {
    const auto* cw = dynamic_cast<const CudaLinearWeight*>(&w);
    return cw != nullptr && cw->has_bias && cw->dtype != DType::kF32 &&
           (cw->bias_lt == nullptr || cw->bias_fused == 0);
  }
  Result<std::unique_ptr<LinearWeight>> prepare_gated_linear(const HostTensor& weight, bool activate_first_half,
                                                             DType compute_dtype) override;
  bool fuses_gated_linear(const LinearWeight& w, Activation act) const override {
    const auto* cw = dynamic_cast<const CudaLinearWeight*>(&w);
    return cw != nullptr && cw->gated_interleaved && act != Activation::kNone;
  }
  Status gated_linear(const GatedLinearArgs& a) override;
  bool fuses_linear_layernorm(const LinearWeight& w) const override {
    const auto* cw = dynamic_cast<const CudaLinearWeight*>(&w);
    return cw != nullptr && cw->layernorm_fusable;
  }
  Status linear_layernorm(const LinearLayerNormArgs& a) override;
  Status linear(const LinearArgs& a) override;
  Status embed_layernorm(const EmbedLayerNormArgs& a) override;
  Status add_layernorm(const AddLayerNormArgs& a) override;
  Status glu(const GluArgs& a) override;
  Status attention(const AttentionArgs& a) override;
  Status pool(const PoolArgs& a) override;

  cudaStream_t stream() const { return streams_[current_]; }
  std::string linear_path() const;

 protected:
  void release(void* ptr) override;
  void release_host(void* ptr) override;

 private:
  CudaBackend(int device, const CudaBackendOptions& options) : device_(device), options_(options) {}
  Status set_device() const;
  // Errors for what recorded work must not do (allocate, copy, wait).
  Status not_while_recording(const char* what) const;
  Status launched(cudaError_t err, const std::string& what) const;
  Status prepare_bias(CudaLinearWeight& w, const HostTensor& bias, DType compute_dtype);
  Result<bool> stage_upload(const void* src_host, std::size_t bytes);
  Status run_gemm(const CudaLinearWeight& w, GemmProblem& p, bool relu, bool with_bias);

  int device_;
  CudaBackendOptions options_;
  cudaDeviceProp props_{};
  std::vector<cudaStream_t> streams_;
  std::size_t current_ = 0;  // the stream use_stream() chose: stream()
  std::unique_ptr<LtGemm> gemm_;
  LinearPath last_linear_;
  // Pinned host buffer for stream-ordered uploads; `staging_done_` is recorded after each copy
  // from it, and waited for before it is written again.
  void* staging_ = nullptr;
  std::size_t staging_bytes_ = 0;
  cudaEvent_t staging_done_ = nullptr;
  bool staging_pending_ = false;
  bool staging_disabled_ = false;  // cudaMallocHost failed once: synchronous uploads only
  // Fences per stream: a fence is n * kMaxStreams + stream for the stream's n-th fence (n >= 1),
  // recorded in that stream's ring[n % kFenceRing]; a ring slot re-recorded later marks later
  // work on the same stream, so waiting on it still covers fence n.
  static constexpr std::size_t kFenceRing = 8;
  struct StreamFences {
    cudaEvent_t ring[kFenceRing] = {};
    std::uint64_t last = 0;
  };
  std::vector<StreamFences> fences_;
  // Timing events for mark(), created on the first one: mark m is in marks_[m % kMarkRing], and
  // mark_origin_ is recorded with mark 1 (the zero of mark_seconds).
  cudaEvent_t marks_[kMarkRing] = {};
  cudaEvent_t mark_origin_ = nullptr;
  Mark last_mark_ = 0;
  // Per stream: (sequence, head) key norms for attention tile skipping.
  std::vector<DeviceMemory> attention_scratch_;
  bool recording_ = false;          // between begin_recording() and end_recording()
};

// A CUDA graph recorded from the backend's stream, instantiated once.
class CudaRecording final : public Recording {
 public:
  CudaRecording(const CudaBackend* owner, cudaGraphExec_t exec) : owner_(owner), exec_(exec) {}
  ~CudaRecording() override { (void)cudaGraphExecDestroy(exec_); }
  CudaRecording(const CudaRecording&) = delete;
  CudaRecording& operator=(const CudaRecording&) = delete;
  const CudaBackend* owner() const { return owner_; }
  cudaGraphExec_t exec() const { return exec_; }

 private:
  const CudaBackend* owner_;
  cudaGraphExec_t exec_;
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
  if (options.streams < 1 || options.streams > kMaxStreams) {
    return invalid_argument(where + ": " + std::to_string(options.streams) + " streams (1 to " +
                            std::to_string(kMaxStreams) + ")");
  }
  int least_priority = 0, greatest_priority = 0;
  EMBD_CUDA_TRY(cudaDeviceGetStreamPriorityRange(&least_priority, &greatest_priority),
                where + ": stream priorities");
  b->fences_.resize(options.streams);
  b->attention_scratch_.resize(options.streams);
  for (std::size_t i = 0; i < options.streams; ++i) {
    cudaStream_t stream = nullptr;
    EMBD_CUDA_TRY(cudaStreamCreateWithPriority(&stream, cudaStreamNonBlocking,
                                               options.high_priority_stream ? greatest_priority
                                                                            : least_priority),
                  where + ": stream");
    b->streams_.push_back(stream);
    for (cudaEvent_t& e : b->fences_[i].ring) {
      EMBD_CUDA_TRY(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), where + ": event");
    }
  }
  EMBD_CUDA_TRY(cudaEventCreateWithFlags(&b->staging_done_, cudaEventDisableTiming), where + ": event");
  EMBD_ASSIGN_OR_RETURN(b->gemm_, LtGemm::create(options.allow_tf32, options.streams));
  return std::unique_ptr<Backend>(std::move(b));
}

CudaBackend::~CudaBackend() {
  if (cudaSetDevice(device_) != cudaSuccess) return;  // driver gone: nothing to release safely
  for (cudaStream_t s : streams_) cudaStreamSynchronize(s);  // also completes every copy from staging_
  attention_scratch_.clear();
  gemm_.reset();
  if (staging_) cudaFreeHost(staging_);
  if (staging_done_) cudaEventDestroy(staging_done_);
  for (StreamFences& f : fences_) {
    for (cudaEvent_t e : f.ring) {
      if (e) cudaEventDestroy(e);
    }
  }
  for (cudaEvent_t e : marks_) {
    if (e) cudaEventDestroy(e);
  }
  if (mark_origin_) cudaEventDestroy(mark_origin_);
  for (cudaStream_t s : streams_) cudaStreamDestroy(s);
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
  EMBD_TRY(not_while_recording("allocate device memory"));
  if (bytes == 0) return DeviceMemory(this, nullptr, 0);
  memory_changed();
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
  memory_changed();
  if (cudaSetDevice(device_) != cudaSuccess) return;
  (void)cudaFree(ptr);  // implicitly waits for the device, so no kernel still reads ptr
  (void)cudaGetLastError();
}

// Copies `bytes` of src_host into the pinned staging buffer (grown as needed), after waiting for
// the previous copy out of it. false: no staging buffer (too large, or pinned memory refused).
Result<bool> CudaBackend::stage_upload(const void* src_host, std::size_t bytes) {
  if (staging_disabled_ || bytes > kStagedUploadMax) return false;
  if (staging_pending_) {
    EMBD_CUDA_TRY(cudaEventSynchronize(staging_done_), name() + ": waiting for the previous upload");
    staging_pending_ = false;
  }
  if (bytes > staging_bytes_) {
    const std::size_t grown = std::max<std::size_t>({bytes, 2 * staging_bytes_, std::size_t{64} << 10});
    const std::size_t want = std::min(kStagedUploadMax, grown);
    if (staging_) {
      (void)cudaFreeHost(staging_);
      staging_ = nullptr;
      staging_bytes_ = 0;
    }
    if (cudaMallocHost(&staging_, want) != cudaSuccess) {
      (void)cudaGetLastError();
      staging_ = nullptr;
      staging_disabled_ = true;
      return false;
    }
    staging_bytes_ = want;
  }
  std::memcpy(staging_, src_host, bytes);
  return true;
}

Status CudaBackend::upload(void* dst_device, const void* src_host, std::size_t bytes) {
  EMBD_TRY(set_device());
  EMBD_TRY(not_while_recording("upload"));
  if (bytes == 0) return ok_status();
  const std::string what = name() + ": upload of " + std::to_string(bytes) + " bytes";
  EMBD_ASSIGN_OR_RETURN(const bool staged, stage_upload(src_host, bytes));
  if (staged) {
    // src_host is already copied, so the caller may reuse it; the DMA from the pinned buffer is
    // ordered on our stream before every later kernel, and nobody waits for it here.
    EMBD_CUDA_TRY(cudaMemcpyAsync(dst_device, staging_, bytes, cudaMemcpyHostToDevice, stream()), what);
    EMBD_CUDA_TRY(cudaEventRecord(staging_done_, stream()), what);
    staging_pending_ = true;
    return ok_status();
  }
  // On our stream (ordered before later kernels), then wait: the caller may free src_host.
  EMBD_CUDA_TRY(cudaMemcpyAsync(dst_device, src_host, bytes, cudaMemcpyHostToDevice, stream()), what);
  EMBD_CUDA_TRY(cudaStreamSynchronize(stream()), what);
  return ok_status();
}

Status CudaBackend::download(void* dst_host, const void* src_device, std::size_t bytes) {
  EMBD_TRY(set_device());
  EMBD_TRY(not_while_recording("download"));
  if (bytes == 0) return synchronize();
  // Stream-ordered after every kernel enqueued so far.
  EMBD_CUDA_TRY(cudaMemcpyAsync(dst_host, src_device, bytes, cudaMemcpyDeviceToHost, stream()),
                name() + ": download of " + std::to_string(bytes) + " bytes");
  EMBD_CUDA_TRY(cudaStreamSynchronize(stream()), name() + ": download of " + std::to_string(bytes) + " bytes");
  return ok_status();
}

Status CudaBackend::synchronize() {
  EMBD_TRY(set_device());
  EMBD_TRY(not_while_recording("synchronize"));
  for (cudaStream_t s : streams_) EMBD_CUDA_TRY(cudaStreamSynchronize(s), name() + ": synchronize");
  return ok_status();
}

Status CudaBackend::use_stream(std::size_t stream) {
  if (stream >= streams_.size()) return Backend::use_stream(stream);
  EMBD_TRY(not_while_recording("switch streams"));
  current_ = stream;
  return ok_status();
}

Result<HostMemory> CudaBackend::allocate_host(std::size_t bytes) {
  EMBD_TRY(set_device());
  EMBD_TRY(not_while_recording("allocate pinned memory"));
  if (bytes == 0) return HostMemory(this, nullptr, 0);
  void* ptr = nullptr;
  const cudaError_t err = cudaMallocHost(&ptr, bytes);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    return Status(ErrorCode::kOutOfMemory, name() + ": cannot allocate " + std::to_string(bytes) +
                                               " bytes of pinned host memory: " + cudaGetErrorString(err));
  }
  return HostMemory(this, ptr, bytes);
}

void CudaBackend::release_host(void* ptr) {
  if (cudaSetDevice(device_) != cudaSuccess) return;
  (void)cudaFreeHost(ptr);  // callers free only after the fence of their last copy into ptr
  (void)cudaGetLastError();
}

Status CudaBackend::download_async(void* dst_host, const void* src_device, std::size_t bytes) {
  EMBD_TRY(set_device());
  EMBD_TRY(not_while_recording("download"));
  if (bytes == 0) return ok_status();
  EMBD_CUDA_TRY(cudaMemcpyAsync(dst_host, src_device, bytes, cudaMemcpyDeviceToHost, stream()),
                name() + ": download of " + std::to_string(bytes) + " bytes");
  return ok_status();
}

Result<Fence> CudaBackend::fence() {
  EMBD_TRY(set_device());
  EMBD_TRY(not_while_recording("record a fence"));
  StreamFences& fences = fences_[current_];
  const std::uint64_t n = fences.last + 1;
  EMBD_CUDA_TRY(cudaEventRecord(fences.ring[n % kFenceRing], stream()), name() + ": recording a fence");
  fences.last = n;
  return n * kMaxStreams + current_;
}

Status CudaBackend::wait(Fence f) {
  if (f == 0) return ok_status();
  EMBD_TRY(set_device());
  EMBD_TRY(not_while_recording("wait for a fence"));
  const std::size_t stream = f % kMaxStreams;
  const std::uint64_t n = f / kMaxStreams;
  if (stream >= fences_.size() || n == 0 || n > fences_[stream].last) {
    return internal_error(name() + ": waiting for fence " + std::to_string(f) + " never recorded");
  }
  EMBD_CUDA_TRY(cudaEventSynchronize(fences_[stream].ring[n % kFenceRing]), name() + ": waiting for the device");
  return ok_status();
}

Result<Mark> CudaBackend::mark() {
  EMBD_TRY(set_device());
  EMBD_TRY(not_while_recording("record a timestamp"));
  if (mark_origin_ == nullptr) {
    for (cudaEvent_t& e : marks_) {
      if (e == nullptr) EMBD_CUDA_TRY(cudaEventCreate(&e), name() + ": timing event");
    }
    EMBD_CUDA_TRY(cudaEventCreate(&mark_origin_), name() + ": timing event");
    EMBD_CUDA_TRY(cudaEventRecord(mark_origin_, stream()), name() + ": recording a timestamp");
  }
  const Mark m = last_mark_ + 1;
  EMBD_CUDA_TRY(cudaEventRecord(marks_[m % kMarkRing], stream()), name() + ": recording a timestamp");
  last_mark_ = m;
  return m;
}

Result<double> CudaBackend::mark_seconds(Mark m) {
  EMBD_TRY(set_device());
  if (m == 0 || m > last_mark_ || m + kMarkRing <= last_mark_) {
    return invalid_argument(name() + ": timestamp " + std::to_string(m) + " is not among the latest " +
                            std::to_string(kMarkRing));
  }
  cudaEvent_t e = marks_[m % kMarkRing];
  EMBD_CUDA_TRY(cudaEventSynchronize(e), name() + ": waiting for a timestamp");
  float ms = 0;
  EMBD_CUDA_TRY(cudaEventElapsedTime(&ms, mark_origin_, e), name() + ": reading a timestamp");
  return static_cast<double>(ms) * 1e-3;
}

Status CudaBackend::not_while_recording(const char* what) const {
  if (!recording_) return ok_status();
  return internal_error(name() + ": cannot " + what + " while recording a CUDA graph");
}

Status CudaBackend::begin_recording() {
  EMBD_TRY(set_device());
  if (!options_.graphs) return unsupported(name() + ": CUDA graphs are turned off");
  EMBD_TRY(not_while_recording("start another recording"));
  // Thread-local mode: other threads (executors of other GPUs) may do anything meanwhile.
  EMBD_CUDA_TRY(cudaStreamBeginCapture(stream(), cudaStreamCaptureModeThreadLocal),
                name() + ": starting a CUDA graph capture");
  recording_ = true;
  return ok_status();
}

Result<std::unique_ptr<Recording>> CudaBackend::end_recording() {
  EMBD_TRY(set_device());
  if (!recording_) return internal_error(name() + ": end_recording() without begin_recording()");
  recording_ = false;
  cudaGraph_t graph = nullptr;
  const cudaError_t err = cudaStreamEndCapture(stream(), &graph);
  if (err != cudaSuccess || graph == nullptr) {
    (void)cudaGetLastError();  // a failed capture leaves no sticky error; the stream runs again
    if (graph != nullptr) (void)cudaGraphDestroy(graph);
    return unsupported(name() + ": the work could not be recorded as a CUDA graph (" +
                       cudaGetErrorString(err) + ")");
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
  (void)cudaGraphDestroy(graph);
  if (inst != cudaSuccess) {
    (void)cudaGetLastError();
    return unsupported(name() + ": instantiating a CUDA graph failed (" + cudaGetErrorString(inst) + ")");
  }
  return std::unique_ptr<Recording>(new CudaRecording(this, exec));
}

Status CudaBackend::replay(const Recording& r) {
  EMBD_TRY(set_device());
  EMBD_TRY(not_while_recording("replay a recording"));
  const auto* cr = dynamic_cast<const CudaRecording*>(&r);
  if (cr == nullptr || cr->owner() != this) {
    return invalid_argument(name() + ": replay() of work recorded by another backend");
  }
  EMBD_CUDA_TRY(cudaGraphLaunch(cr->exec(), stream()), name() + ": launching a CUDA graph");
  return ok_status();
}

Status CudaBackend::prepare_bias(CudaLinearWeight& w, const HostTensor& bias, DType compute_dtype) {
  const auto n = static_cast<std::size_t>(bias.numel());
  std::vector<float> f32(n);
  convert(bias.data, bias.dtype, f32.data(), DType::kF32, n);
  EMBD_ASSIGN_OR_RETURN(w.bias_f32_mem, allocate(n * sizeof(float)));
  EMBD_TRY(upload(w.bias_f32_mem.get(), f32.data(), n * sizeof(float)));
  w.bias_f32 = w.bias_f32_mem.as<const float>();
  if (compute_dtype == DType::kF32) {
    w.bias_lt = w.bias_f32;
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
  if (options_.fused_linear_layernorm && w->in_features <= options_.linear_layernorm_max_k &&
      linear_layernorm_supported(props_.major, props_.minor, elem(compute_dtype), w->in_features, w->out_features)) {
    if (make_linear_layernorm_weight_map(elem(compute_dtype), w->weight.get(), w->in_features, &w->layernorm_map) ==
        cudaSuccess) {
      w->layernorm_fusable = true;
    } else {
      (void)cudaGetLastError();  // the unfused path serves it
    }
  }
  return std::unique_ptr<LinearWeight>(std::move(w));
}

Result<std::unique_ptr<LinearWeight>> CudaBackend::prepare_gated_linear(const HostTensor& weight,
                                                                        bool activate_first_half,
                                                                        DType compute_dtype) {
  const bool matrix = weight.shape.size() == 2 && weight.shape[0] % 2 == 0 && weight.data != nullptr;
  const long long inner = matrix ? weight.shape[0] / 2 : 0, k = matrix ? weight.shape[1] : 0;
  if (!options_.fused_gated_linear || !matrix ||
      !gated_gemm_supported(props_.major, props_.minor, elem(compute_dtype), k, inner, ActKind::kGeluErf)) {
    return Backend::prepare_gated_linear(weight, activate_first_half, compute_dtype);
  }
  // Reorder the rows on the host (stored dtype), then upload as any Linear weight.
  const std::size_t row_bytes = static_cast<std::size_t>(k) * dtype_size(weight.dtype);
  std::vector<std::int64_t> dst_of_src(static_cast<std::size_t>(2 * inner));
  interleave_gated_rows(inner, activate_first_half, dst_of_src.data());
  std::vector<std::uint8_t> rows(static_cast<std::size_t>(2 * inner) * row_bytes);
  const auto* src = static_cast<const std::uint8_t*>(weight.data);
  for (std::size_t r = 0; r < dst_of_src.size(); ++r) {
    std::memcpy(rows.data() + static_cast<std::size_t>(dst_of_src[r]) * row_bytes, src + r * row_bytes, row_bytes);
  }
  HostTensor interleaved = weight;
  interleaved.data = rows.data();
  EMBD_ASSIGN_OR_RETURN(auto prepared, prepare_linear(interleaved, nullptr, compute_dtype));
  auto* w = static_cast<CudaLinearWeight*>(prepared.get());
  w->activates_first_half = activate_first_half;
  w->layernorm_fusable = false;  // only gated_linear() reads this weight
  if (make_gated_gemm_weight_map(elem(compute_dtype), w->weight.get(), inner, k, &w->gated_map) != cudaSuccess) {
    (void)cudaGetLastError();
    return Backend::prepare_gated_linear(weight, activate_first_half, compute_dtype);
  }
  w->gated_interleaved = true;
  return prepared;
}

Status CudaBackend::gated_linear(const GatedLinearArgs& a) {
  EMBD_TRY(set_device());
  const auto* w = dynamic_cast<const CudaLinearWeight*>(a.weight);
  if (w == nullptr || w->owner != this || !w->gated_interleaved) {
    return invalid_argument(name() + ": gated_linear weight was not prepared for the fused kernel by this backend");
  }
  if (a.x.rows < options_.gated_fused_min_rows && a.scratch.data != nullptr) {
    GemmProblem g = gemm_problem(*w, a.x, a.scratch);
    EMBD_TRY(run_gemm(*w, g, false, false));
    // The activated half comes first in every interleaved block.
    GluParams glu = glu_params(a.scratch, a.out, true, a.activation);
    glu.interleave_block = kGatedGemmBlockN / 2;
    return launched(launch_glu(glu, stream()), "gated_linear glu " + dims(a.scratch));
  }
  GatedGemmParams p;
  p.early_launch = early_launch();
  p.type = elem(w->dtype);
  p.rows = a.x.rows;
  p.k = w->in_features;
  p.inner = w->out_features / 2;
  p.x = a.x.data;
  p.ldx = a.x.ld;
  p.out = a.out.data;
  p.ldo = a.out.ld;
  p.act = act_kind(a.activation);
  p.sm_count = props_.multiProcessorCount;
  if (!gated_gemm_aligned(p)) {
    return unsupported(name() + ": gated_linear x " + dims(a.x) + " / out " + dims(a.out) +
                       ": the fused kernel needs 16-byte aligned input rows and 4-byte aligned output rows");
  }
  return launched(launch_gated_gemm(p, w->gated_map, stream()), "gated_linear " + dims(a.x));
}

Status CudaBackend::linear_layernorm(const LinearLayerNormArgs& a) {
  EMBD_TRY(set_device());
  const auto* w = dynamic_cast<const CudaLinearWeight*>(a.weight);
  if (w == nullptr || w->owner != this) {
    return invalid_argument(name() + ": linear_layernorm weight was not prepared by this backend");
  }
  LinearLayerNormParams p;
  p.early_launch = early_launch();
  p.type = elem(w->dtype);
  p.rows = a.x.rows;
  p.k = w->in_features;
  p.x = a.x.data;
  p.ldx = a.x.ld;
  p.residual = a.residual.data;
  p.ldr = a.residual.ld;
  p.bias = w->has_bias ? w->bias_f32 : nullptr;
  p.gamma = a.gamma;
  p.beta = a.beta;
  p.eps = a.eps;
  p.out = a.out.data;
  p.ldo = a.out.ld;
  p.sm_count = props_.multiProcessorCount;
  const bool fused = w->layernorm_fusable && linear_layernorm_aligned(p) &&
                     (a.x.rows >= options_.linear_layernorm_fused_min_rows || a.scratch.data == nullptr);
  if (!fused) {
    if (a.scratch.data == nullptr) {
      return unsupported(name() + ": linear_layernorm x " + dims(a.x) + " / out " + dims(a.out) +
                         ": the fused kernel needs 16-byte aligned rows; give scratch room for the unfused path");
    }
    return Backend::linear_layernorm(a);
  }
  return launched(launch_linear_layernorm(p, w->layernorm_map, stream()), "linear_layernorm " + dims(a.x));
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
  GemmProblem p = gemm_problem(*w, a.x, a.y);
  const bool relu = a.activation == Activation::kRelu;
  last_linear_ = LinearPath{};
  const bool with_bias = w->has_bias && !a.skip_bias;
  EMBD_TRY(run_gemm(*w, p, relu, with_bias));
  // What cuBLASLt did not apply: the F32 bias and/or the activation (erf GELU always).
  const bool bias_done = p.epilogue == GemmEpilogue::kBias || p.epilogue == GemmEpilogue::kReluBias;
  const bool relu_done = p.epilogue == GemmEpilogue::kRelu || p.epilogue == GemmEpilogue::kReluBias;
  const float* post_bias = (with_bias && !bias_done) ? w->bias_f32 : nullptr;
  if (with_bias) w->bias_fused = bias_done ? 1 : 0;
  ActKind post_act = act_kind(a.activation);
  if (relu && relu_done) post_act = ActKind::kNone;
  last_linear_ = LinearPath{true, p.epilogue, bias_done && p.bias_f32, post_bias != nullptr, post_act};
  if (post_bias == nullptr && post_act == ActKind::kNone) return ok_status();
  return launched(launch_bias_act(p.type, a.y.data, p.m, p.n, p.ldy, post_bias, post_act, stream()),
                  "linear epilogue");
}

// Runs the GEMM with the most fused epilogue cuBLASLt accepts, in this order: the bias in the
// output dtype (when lossless), the F32 bias (16-bit output), then without the bias; ReLU rides
// along when there is no bias. Each refusal is cached per plan by LtGemm, so a shape that cannot
// fuse costs one map lookup per call. On return p.epilogue / p.bias_f32 say what was applied.
Status CudaBackend::run_gemm(const CudaLinearWeight& w, GemmProblem& p, bool relu, bool with_bias) {
  Status st = ok_status();
  const auto attempt = [&](GemmEpilogue e, const void* bias, bool bias_f32) {
    p.epilogue = e;
    p.bias = bias;
    p.bias_f32 = bias_f32;
    st = gemm_->run(p, stream(), current_);
    return st.code() != ErrorCode::kUnsupported;  // done: ran, or failed for real
  };
  const GemmEpilogue bias_epilogue = relu ? GemmEpilogue::kReluBias : GemmEpilogue::kBias;
  const bool f32 = w.dtype == DType::kF32;
  bool done = false;
  if (with_bias && w.bias_lt != nullptr) done = attempt(bias_epilogue, w.bias_lt, f32);
  if (!done && with_bias && !f32) done = attempt(bias_epilogue, w.bias_f32, true);
  if (!done && relu && !with_bias) done = attempt(GemmEpilogue::kRelu, nullptr, false);
  if (!done) attempt(GemmEpilogue::kNone, nullptr, false);
  return st.ok() ? st : st.with_context(name());
}

std::string CudaBackend::linear_path() const {
  const LinearPath& l = last_linear_;
  if (!l.valid) return {};
  std::string s = std::string("cublasLt ") + epilogue_name(l.epilogue);
  if (l.epilogue == GemmEpilogue::kBias || l.epilogue == GemmEpilogue::kReluBias) {
    s += l.bias_f32 ? " (f32 bias)" : " (bias in output dtype)";
  }
  if (l.post_bias || l.post_act != ActKind::kNone) {
    s += " + epilogue kernel (";
    s += l.post_bias ? "f32 bias" : "";
    s += (l.post_bias && l.post_act != ActKind::kNone) ? ", " : "";
    s += l.post_act != ActKind::kNone ? act_name(l.post_act) : "";
    s += ")";
  }
  return s;
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
  return launched(launch_embed_layernorm(p, stream()),
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
  p.early_launch = early_launch();
  p.type = elem(a.x.dtype);
  p.rows = a.x.rows;
  p.width = a.x.cols;
  p.x = a.x.data;
  p.x_ld = a.x.ld;
  p.residual = a.residual.data;
  p.residual_ld = a.residual.ld;
  p.bias = a.bias;
  p.gamma = a.gamma;
  p.beta = a.beta;
  p.eps = a.eps;
  p.out = a.out.data;
  p.out_ld = a.out.ld;
  return launched(launch_add_layernorm(p, stream()),
                  "add_layernorm " + dims(a.x) + " (at most " + std::to_string(kMaxNormWidth) + " features)");
}

Status CudaBackend::glu(const GluArgs& a) {
  EMBD_TRY(set_device());
  if (a.in.dtype != a.out.dtype) {
    return invalid_argument(name() + ": glu in " + dims(a.in) + " / out " + dims(a.out) + ": dtypes differ");
  }
  return launched(launch_glu(glu_params(a.in, a.out, a.activate_first_half, a.activation), stream()),
                  "glu " + dims(a.in));
}

Status CudaBackend::attention(const AttentionArgs& a) {
  EMBD_TRY(set_device());
  if (!attention_head_dim_supported(a.head_dim)) {
    return unsupported(name() + ": attention head_dim " + std::to_string(a.head_dim) +
                       " (the CUDA kernels handle 1 to " + std::to_string(kMaxAttentionHeadDim) + ")");
  }
  if (a.qkv.dtype != a.out.dtype) {
    return invalid_argument(name() + ": attention qkv " + dims(a.qkv) + " / out " + dims(a.out) +
                            ": dtypes differ");
  }
  AttentionParams p;
  p.early_launch = early_launch();
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
  p.relative_bias = a.relative_bias;
  p.relative_reach = a.relative_reach;
  p.q_bias = a.q_bias;
  p.v_bias = a.v_bias;
  p.wgmma = options_.hopper_attention && props_.major == 9 && props_.minor == 0;
  const std::string what = "attention qkv " + dims(a.qkv) + ", " + std::to_string(a.batch) +
                           " sequences of at most " + std::to_string(p.max_seqlen) + " tokens";
  if (!options_.portable_attention && attention_mma_applicable(p)) {
    if (p.alibi_slopes != nullptr && options_.alibi_tile_skipping) {  // scratch for tile skipping
      const std::size_t bytes = static_cast<std::size_t>(p.batch) * static_cast<std::size_t>(p.num_heads) * sizeof(float);
      DeviceMemory& scratch = attention_scratch_[current_];
      if (scratch.bytes() < bytes) {
        scratch.reset();
        EMBD_ASSIGN_OR_RETURN(scratch, allocate(std::max<std::size_t>(bytes, 64u << 10)));
      }
      p.key_norm_scratch = scratch.as<float>();
    }
    return launched(launch_attention_mma(p, stream()), what);
  }
  return launched(launch_attention_simple(p, stream()), what);
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
  return launched(launch_pool(p, stream()), "pool " + dims(a.hidden));
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

std::string linear_path(Backend& backend) {
  auto* cuda = dynamic_cast<CudaBackend*>(&backend);
  return cuda != nullptr ? cuda->linear_path() : std::string();
}

}  // namespace embd::backend::cuda
