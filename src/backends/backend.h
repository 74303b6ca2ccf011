// The backend interface: the kernel table every device implements (CPU, CUDA, ...).
//
// A Backend instance is one device. It is owned and driven by exactly one executor thread
// (DESIGN.md principle 3): none of its methods are thread-safe, and callers outside that thread
// never see it. Pointers in the argument structs are device pointers of this backend (on the CPU
// backend, host pointers). Kernels are asynchronous where the device is (CUDA: enqueued on the
// backend's stream); download() and synchronize() wait.
//
// Dtypes: activations (Mat) are in the model's compute dtype (F32, F16 or BF16); every kernel
// takes the dtype from its arguments. Bias, LayerNorm parameters, ALiBi slopes and pooled outputs
// are always F32. Reductions (GEMM accumulation, softmax, LayerNorm statistics, pooling) run in
// F32. Kernels trust their arguments: the ops layer (src/ops) validates shapes and dtypes once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "core/dtype.h"
#include "core/status.h"
#include "core/tensor.h"

namespace embd::backend {

enum class Op : std::uint8_t {
  kLinear,          // y = x W^T + b (+ activation)
  kEmbedLayerNorm,  // gather word (+ type, + position) rows, then LayerNorm
  kAddLayerNorm,    // out = LayerNorm(x + residual)   (residual optional)
  kGlu,             // out = act(gate) * up, from one [T, 2I] projection
  kAttention,       // padding-free multi-head attention with optional ALiBi
  kPool,            // per-sequence mean / CLS pooling into F32
  kCount,
};
const char* op_name(Op op);

enum class Activation : std::uint8_t { kNone, kGeluErf, kRelu };
enum class PoolMode : std::uint8_t { kMean, kCls };

class Backend;

// Memory owned by a backend (RAII, move-only): device memory, or host memory the device copies
// into without staging (pinned on CUDA). Must not outlive its backend.
enum class MemorySpace : std::uint8_t { kDevice, kHost };

template <MemorySpace Space>
class BackendMemory {
 public:
  BackendMemory() = default;
  BackendMemory(Backend* owner, void* ptr, std::size_t bytes) : owner_(owner), ptr_(ptr), bytes_(bytes) {}
  BackendMemory(BackendMemory&& o) noexcept { *this = std::move(o); }
  BackendMemory& operator=(BackendMemory&& o) noexcept;
  BackendMemory(const BackendMemory&) = delete;
  BackendMemory& operator=(const BackendMemory&) = delete;
  ~BackendMemory() { reset(); }

  void reset();
  void* get() const { return ptr_; }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }
  std::size_t bytes() const { return bytes_; }

 private:
  Backend* owner_ = nullptr;
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};
using DeviceMemory = BackendMemory<MemorySpace::kDevice>;
using HostMemory = BackendMemory<MemorySpace::kHost>;

// A point in a backend's stream of work (see Backend::fence()).
using Fence = std::uint64_t;
// A device timestamp in a backend's stream of work, for tracing (see Backend::mark()).
using Mark = std::uint64_t;

// Work recorded by Backend::begin_recording() / end_recording(), owned by the caller and
// replayed on the backend that recorded it (which must outlive it).
class Recording {
 public:
  virtual ~Recording() = default;
};

// A Linear layer's weight [out, in] and optional bias [out], prepared once at load in the
// backend's preferred layout (packed for oneDNN, device-resident for CUDA) and compute dtype.
class LinearWeight {
 public:
  virtual ~LinearWeight() = default;
  std::int64_t out_features = 0;
  std::int64_t in_features = 0;
  DType dtype = DType::kF32;
  bool has_bias = false;
  const float* bias_f32 = nullptr;  // the bias as F32 on this backend's device, when has_bias
  // Set by Backend::prepare_gated_linear(): which half of the outputs the GLU activates.
  bool activates_first_half = true;
};

struct LinearArgs {
  const LinearWeight* weight = nullptr;
  Mat x;  // [M, in]
  Mat y;  // [M, out]; must not alias x
  Activation activation = Activation::kNone;
  // Leave the bias out: the caller adds weight->bias_f32 later (the next add_layernorm, or
  // attention's q_bias / v_bias). Only where Backend::defers_linear_bias(*weight) (the ops layer
  // checks).
  bool skip_bias = false;
};

struct EmbedLayerNormArgs {
  const std::int32_t* ids = nullptr;        // [tokens]
  const std::int32_t* type_ids = nullptr;   // [tokens] or null (= type 0)
  const std::int32_t* positions = nullptr;  // [tokens] or null (no position table)
  std::int64_t tokens = 0;
  Mat word_table;      // [vocab, H]
  Mat type_table;      // [types, H]; data null when the model has none
  Mat position_table;  // [max_pos, H]; data null for ALiBi models
  const float* gamma = nullptr;  // [H]
  const float* beta = nullptr;   // [H]
  float eps = 1e-12f;
  Mat out;  // [tokens, H]
};

struct AddLayerNormArgs {
  Mat x;         // [T, H]
  Mat residual;  // [T, H]; data null = no residual
  const float* bias = nullptr;  // [H] F32 added to x (a Linear's deferred bias), or null
  const float* gamma = nullptr;
  const float* beta = nullptr;
  float eps = 1e-12f;
  Mat out;  // [T, H]; may alias x or residual
};

struct GluArgs {
  Mat in;   // [T, 2I]
  Mat out;  // [T, I]
  // true: act(in[:, :I]) * in[:, I:] (JinaBERT gated_layers); false: in[:, :I] * act(in[:, I:])
  // (JinaBERT code-model up_gated_layer).
  bool activate_first_half = true;
  Activation activation = Activation::kGeluErf;
};

// A gated MLP's input projection and its GLU in one: out = act(gate) * up, where x W^T is
// [gate | up] or [up | gate] (LinearWeight::activates_first_half). The weight ([2I, in], no bias)
// comes from Backend::prepare_gated_linear(), possibly in a layout of the backend's own.
struct GatedLinearArgs {
  const LinearWeight* weight = nullptr;
  Mat x;    // [T, in]
  Mat out;  // [T, I]
  Activation activation = Activation::kGeluErf;
  // [T, 2I] for the projection where it is computed in a pass of its own (the unfused path, or
  // a backend's choice for some batches); data may be null, then gated_linear() fuses always.
  Mat scratch;
};

// A Linear layer and the residual LayerNorm after it in one op:
//   out = LayerNorm(x W^T + b + residual) (gamma, beta)
// (BERT's attention output and MLP down projections). Backend::linear_layernorm() runs linear()
// into the scratch and then add_layernorm(), unless the backend fuses the two
// (fuses_linear_layernorm()).
struct LinearLayerNormArgs {
  const LinearWeight* weight = nullptr;  // [H, in], bias optional
  Mat x;         // [T, in]
  Mat residual;  // [T, H]; data null = no residual
  const float* gamma = nullptr;  // [H]
  const float* beta = nullptr;   // [H]
  float eps = 1e-12f;
  Mat out;  // [T, H]; may alias residual, not x
  // [T, H] for the projection where it is computed in a pass of its own (the unfused path, or a
  // backend's choice for some batches); data may be null only where fuses_linear_layernorm(),
  // and even then a backend may refuse (kUnsupported) arguments its fused kernel cannot address.
  Mat scratch;
};

// The largest AttentionArgs::relative_reach (the CUDA kernels keep a head's table in shared memory).
constexpr int kMaxRelativeReach = 256;

struct AttentionArgs {
  // Packed projections [T, 3H]: columns [0,H) = Q, [H,2H) = K, [2H,3H) = V; head h uses the
  // d columns h*d .. h*d+d-1 of each part. Any row stride (ld) is allowed.
  Mat qkv;
  Mat out;  // [T, H]
  const std::int32_t* cu_seqlens = nullptr;       // device, [batch + 1], cu[0] = 0
  const std::int32_t* cu_seqlens_host = nullptr;  // the same offsets on the host
  std::int64_t batch = 0;
  std::int64_t max_seqlen = 0;
  int num_heads = 0;
  int head_dim = 0;
  float scale = 1.0f;                    // applied to q.k before the bias
  const float* alibi_slopes = nullptr;   // device [num_heads] or null: bias = -slope*|i-j|
  // A relative-position bias table (MPNet's bucketed one, laid out per distance), device F32
  // [num_heads][2 * relative_reach + 1], or null. Query i's score for key j of head h gets
  // relative_bias[h * (2R + 1) + R + clamp(j - i, -R, R)] (R = relative_reach, 1..
  // kMaxRelativeReach): bucketed biases are constant beyond their largest distance, so a table
  // that far is exact at any length. Never together with alibi_slopes.
  const float* relative_bias = nullptr;
  int relative_reach = 0;
  // The Q and V parts of the QKV projection's bias (F32 [H] each, on this backend's device) when
  // qkv was computed without its bias (LinearArgs::skip_bias), else null. The kernel adds q_bias
  // to each query row and v_bias to each output row (exact: a row's weights sum to 1). K's part
  // is never needed: it adds q_i . b_k to every score of row i, which the softmax cancels.
  const float* q_bias = nullptr;
  const float* v_bias = nullptr;
};

struct PoolArgs {
  Mat hidden;  // [T, H]
  const std::int32_t* cu_seqlens = nullptr;
  const std::int32_t* cu_seqlens_host = nullptr;
  std::int64_t batch = 0;
  PoolMode mode = PoolMode::kMean;
  float* out = nullptr;  // device, F32 [batch, H] (row stride H)
};

class Backend {
 public:
  virtual ~Backend() = default;

  // "cpu", "cuda:0", ...
  virtual std::string name() const = 0;
  // Human-readable description (ISA, card, memory).
  virtual std::string description() const = 0;
  // Whether `op` runs in `dtype` here. Ops not supported must not be called.
  virtual bool supports(Op op, DType dtype) const = 0;
  // The dtype the backend would pick for weights stored in `stored` when the user says "auto".
  virtual DType preferred_dtype(DType stored) const = 0;

  // Memory. allocate() returns kOutOfMemory on failure.
  virtual Result<DeviceMemory> allocate(std::size_t bytes) = 0;
  virtual Status upload(void* dst_device, const void* src_host, std::size_t bytes) = 0;
  virtual Status download(void* dst_host, const void* src_device, std::size_t bytes) = 0;
  virtual Status synchronize() = 0;

  // Pipelining (the executor enqueues batch N+1 while batch N runs). A backend whose kernels
  // return before the device finishes says so with asynchronous(); the defaults below suit a
  // synchronous one, where every call has finished its work when it returns.
  virtual bool asynchronous() const { return false; }
  // Host memory for download_async() (pinned on CUDA, so the copy needs no staging).
  virtual Result<HostMemory> allocate_host(std::size_t bytes);
  // Enqueues a copy to host memory after all work enqueued so far and returns without waiting;
  // the bytes are in dst_host once a fence recorded after this call has been waited for.
  virtual Status download_async(void* dst_host, const void* src_device, std::size_t bytes) {
    return download(dst_host, src_device, bytes);
  }
  // Concurrent streams of work (CUDA streams; one on a synchronous backend). Work on one stream
  // runs in the order it was enqueued; work on different streams may run at the same time, so a
  // caller gives each stream its own buffers for whatever is in flight on both at once. Every
  // later call that enqueues work (kernels, upload, download, fence, mark, recording and replay)
  // goes to the stream use_stream() chose last (stream 0 at first); synchronize() waits for all.
  virtual std::size_t streams() const { return 1; }
  virtual Status use_stream(std::size_t stream);

  // Marks everything enqueued so far on the current stream; wait(f) blocks until that work has
  // finished (later work may still run). Waiting for an old fence is cheap and always correct.
  virtual Result<Fence> fence() { return Fence{0}; }
  virtual Status wait(Fence f) {
    (void)f;
    return ok_status();
  }

  // Device timestamps, for tracing only (LoadOptions::batch_trace). mark() records one in stream
  // order; mark_seconds(m) waits until the device passed it and returns its time in seconds since
  // the backend's first mark. Only the latest kMarkRing marks can be read. A backend without a
  // device clock of its own answers kUnsupported.
  static constexpr std::size_t kMarkRing = 16;
  virtual Result<Mark> mark();
  virtual Result<double> mark_seconds(Mark m);

  // Recording (CUDA graphs). Work enqueued between begin_recording() and end_recording() is
  // recorded instead of run; replay() enqueues all of it again as one launch, with the same
  // pointers and launch shapes, reading whatever the device memory holds then. Recorded work
  // must not allocate, free, upload, download or wait. After a failed end_recording() (some
  // call could not be recorded) the backend runs work normally again.
  virtual bool can_record() const { return false; }
  virtual Status begin_recording();
  virtual Result<std::unique_ptr<Recording>> end_recording();
  virtual Status replay(const Recording& r);
  // Changes whenever device memory is allocated or released, so recorded pointers are valid
  // while it reads the same as when the recording was made.
  std::uint64_t memory_generation() const { return memory_generation_; }

  // Uploads a host tensor converted to `dtype` (any dtype to any dtype).
  Result<DeviceMemory> upload_tensor(const HostTensor& t, DType dtype);

  // Whether linear() adds this weight's bias in a separate pass, so that adding it later instead
  // (LinearArgs::skip_bias: in the next add_layernorm, or as attention's q_bias / v_bias) saves a
  // trip through memory.
  virtual bool defers_linear_bias(const LinearWeight& w) const {
    (void)w;
    return false;
  }

  // Prepares a Linear weight ([out, in], any stored dtype) and optional bias ([out]).
  virtual Result<std::unique_ptr<LinearWeight>> prepare_linear(const HostTensor& weight,
                                                               const HostTensor* bias,
                                                               DType compute_dtype) = 0;

  // Prepares a gated MLP's input projection (see GatedLinearArgs). A backend whose
  // gated_linear() fuses the GLU may store it in a layout only that kernel reads; by default it
  // is an ordinary Linear weight.
  virtual Result<std::unique_ptr<LinearWeight>> prepare_gated_linear(const HostTensor& weight,
                                                                     bool activate_first_half,
                                                                     DType compute_dtype);
  // Whether gated_linear() runs for this weight and activation (the projection and GLU in one
  // pass, at least for large batches). Otherwise the ops layer computes linear() into the scratch
  // and then glu().
  virtual bool fuses_gated_linear(const LinearWeight& w, Activation act) const {
    (void)w;
    (void)act;
    return false;
  }

  // Whether linear_layernorm() runs as one kernel for this weight (at least for large batches).
  virtual bool fuses_linear_layernorm(const LinearWeight& w) const {
    (void)w;
    return false;
  }

  // Kernels.
  virtual Status gated_linear(const GatedLinearArgs& a);
  // By default linear() into a.scratch (the bias deferred to the LayerNorm where
  // defers_linear_bias()), then add_layernorm().
  virtual Status linear_layernorm(const LinearLayerNormArgs& a);
  virtual Status linear(const LinearArgs& a) = 0;
  virtual Status embed_layernorm(const EmbedLayerNormArgs& a) = 0;
  virtual Status add_layernorm(const AddLayerNormArgs& a) = 0;
  virtual Status glu(const GluArgs& a) = 0;
  virtual Status attention(const AttentionArgs& a) = 0;
  virtual Status pool(const PoolArgs& a) = 0;

 protected:
  friend class BackendMemory<MemorySpace::kDevice>;
  friend class BackendMemory<MemorySpace::kHost>;
  virtual void release(void* ptr) = 0;
  virtual void release_host(void* ptr);
  // Backends call this from allocate() and release().
  void memory_changed() { ++memory_generation_; }

 private:
  std::uint64_t memory_generation_ = 0;
};

}  // namespace embd::backend
