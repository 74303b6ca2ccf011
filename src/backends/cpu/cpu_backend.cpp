#include "backends/cpu/cpu_backend.h"

#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "backends/cpu/cpu_isa.h"
#include "backends/cpu/cpu_kernels.h"
#include "backends/cpu/cpu_linear.h"

namespace embd::backend::cpu {
namespace {

constexpr std::size_t kAlignment = 64;

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads) : threads_(threads > 0 ? threads : omp_get_num_procs()) {}

  std::string name() const override { return "cpu"; }

  std::string description() const override {
    const CpuFeatures& f = cpu_features();
    std::string s = "CPU, " + std::to_string(threads_) + " thread" + (threads_ == 1 ? "" : "s") +
                    ", kernels " + isa_name(f.isa);
    s += f.avx512_bf16 ? ", avx512_bf16" : "";
    s += ", GEMM oneDNN";
    return s;
  }

  bool supports(Op op, DType dtype) const override {
    if (op == Op::kLinear) return linear_supported(dtype);
    return op != Op::kCount;
  }

  DType preferred_dtype(DType stored) const override {
    // No native F16 arithmetic on CPUs we target (no AVX512_FP16 path): F16 weights widen to F32.
    // BF16 runs natively (vdpbf16ps) only with AVX512_BF16; emulated BF16 is slower than F32.
    if (stored == DType::kBF16 && cpu_features().avx512_bf16 && linear_supported(DType::kBF16)) {
      return DType::kBF16;
    }
    return DType::kF32;
  }

  Result<DeviceMemory> allocate(std::size_t bytes) override {
    const std::size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    void* p = std::aligned_alloc(kAlignment, rounded == 0 ? kAlignment : rounded);
    if (!p) {
      return Status(ErrorCode::kOutOfMemory,
                    "cpu: cannot allocate " + std::to_string(bytes) + " bytes of host memory");
    }
    return DeviceMemory(this, p, bytes);
  }

  Status upload(void* dst, const void* src, std::size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
    return ok_status();
  }
  Status download(void* dst, const void* src, std::size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
    return ok_status();
  }
  Status synchronize() override { return ok_status(); }

  Result<std::unique_ptr<LinearWeight>> prepare_linear(const HostTensor& weight,
                                                       const HostTensor* bias,
                                                       DType compute_dtype) override {
    set_threads();
    return prepare_cpu_linear(weight, bias, compute_dtype);
  }

  Status linear(const LinearArgs& a) override {
    set_threads();
    return run_cpu_linear(a, linear_scratch_);
  }
  Status embed_layernorm(const EmbedLayerNormArgs& a) override {
    set_threads();
    embed_layernorm_kernel(a);
    return ok_status();
  }
  Status add_layernorm(const AddLayerNormArgs& a) override {
    set_threads();
    add_layernorm_kernel(a);
    return ok_status();
  }
  Status glu(const GluArgs& a) override {
    set_threads();
    glu_kernel(a);
    return ok_status();
  }
  Status attention(const AttentionArgs& a) override {
    set_threads();
    attention_kernel(a, attention_scratch_);
    return ok_status();
  }
  Status pool(const PoolArgs& a) override {
    set_threads();
    pool_kernel(a);
    return ok_status();
  }

 protected:
  void release(void* ptr) override { std::free(ptr); }

 private:
  // OpenMP's thread count is per calling thread, and the executor thread that drives this
  // backend is not the one that created it, so set it on every entry (cheap).
  void set_threads() const { omp_set_num_threads(threads_); }

  int threads_;
  std::vector<float> linear_scratch_;
  std::vector<float> attention_scratch_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) {
  return std::make_unique<CpuBackend>(threads);
}

}  // namespace embd::backend::cpu
