#include "backends/backend.h"

#include <cstdlib>
#include <string>
#include <vector>

namespace embd::backend {

const char* op_name(Op op) {
  switch (op) {
    case Op::kLinear: return "linear";
    case Op::kEmbedLayerNorm: return "embed_layernorm";
    case Op::kAddLayerNorm: return "add_layernorm";
    case Op::kGlu: return "glu";
    case Op::kAttention: return "attention";
    case Op::kPool: return "pool";
    case Op::kCount: break;
  }
  return "?";
}

template <MemorySpace Space>
BackendMemory<Space>& BackendMemory<Space>::operator=(BackendMemory&& o) noexcept {
  if (this != &o) {
    reset();
    owner_ = o.owner_;
    ptr_ = o.ptr_;
    bytes_ = o.bytes_;
    o.owner_ = nullptr;
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

template <MemorySpace Space>
void BackendMemory<Space>::reset() {
  if (ptr_ && owner_) {
    if constexpr (Space == MemorySpace::kDevice) {
      owner_->release(ptr_);
    } else {
      owner_->release_host(ptr_);
    }
  }
  owner_ = nullptr;
  ptr_ = nullptr;
  bytes_ = 0;
}

template class BackendMemory<MemorySpace::kDevice>;
template class BackendMemory<MemorySpace::kHost>;

Result<HostMemory> Backend::allocate_host(std::size_t bytes) {
  if (bytes == 0) return HostMemory(this, nullptr, 0);
  void* ptr = std::malloc(bytes);
  if (ptr == nullptr) {
    return Status(ErrorCode::kOutOfMemory, "cannot allocate " + std::to_string(bytes) + " bytes of host memory");
  }
  return HostMemory(this, ptr, bytes);
}

void Backend::release_host(void* ptr) { std::free(ptr); }

Status Backend::use_stream(std::size_t stream) {
  if (stream == 0) return ok_status();
  return invalid_argument(name() + ": no stream " + std::to_string(stream) + " (" +
                          std::to_string(streams()) + " stream" + (streams() == 1 ? "" : "s") + ")");
}

Result<Mark> Backend::mark() { return unsupported(name() + ": no device timestamps"); }

Result<double> Backend::mark_seconds(Mark m) {
  (void)m;
  return unsupported(name() + ": no device timestamps");
}

Status Backend::begin_recording() { return unsupported(name() + ": cannot record work"); }

Result<std::unique_ptr<Recording>> Backend::end_recording() {
  return unsupported(name() + ": cannot record work");
}

Status Backend::replay(const Recording& r) {
  (void)r;
  return unsupported(name() + ": cannot replay recorded work");
}

Result<std::unique_ptr<LinearWeight>> Backend::prepare_gated_linear(const HostTensor& weight,
                                                                    bool activate_first_half,
                                                                    DType compute_dtype) {
  EMBD_ASSIGN_OR_RETURN(auto w, prepare_linear(weight, nullptr, compute_dtype));
  w->activates_first_half = activate_first_half;
  return w;
}

Status Backend::gated_linear(const GatedLinearArgs& a) {
  (void)a;
  return unsupported(name() + ": gated_linear is not fused here (use linear, then glu)");
}

Status Backend::linear_layernorm(const LinearLayerNormArgs& a) {
  const LinearWeight& w = *a.weight;
  const bool defer = w.has_bias && defers_linear_bias(w);
  LinearArgs lin;
  lin.weight = &w;
  lin.x = a.x;
  lin.y = a.scratch;
  lin.skip_bias = defer;
  EMBD_TRY(linear(lin));
  AddLayerNormArgs ln;
  ln.x = a.scratch;
  ln.residual = a.residual;
  ln.bias = defer ? w.bias_f32 : nullptr;
  ln.gamma = a.gamma;
  ln.beta = a.beta;
  ln.eps = a.eps;
  ln.out = a.out;
  return add_layernorm(ln);
}

Result<DeviceMemory> Backend::upload_tensor(const HostTensor& t, DType dtype) {
  const std::size_t n = static_cast<std::size_t>(t.numel());
  EMBD_ASSIGN_OR_RETURN(DeviceMemory mem, allocate(n * dtype_size(dtype)));
  if (t.dtype == dtype) {
    EMBD_TRY(upload(mem.get(), t.data, n * dtype_size(dtype)));
  } else {
    std::vector<std::uint8_t> staged(n * dtype_size(dtype));
    convert(t.data, t.dtype, staged.data(), dtype, n);
    EMBD_TRY(upload(mem.get(), staged.data(), staged.size()));
  }
  return mem;
}

}  // namespace embd::backend
