#include "backends/backend.h"

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

DeviceMemory& DeviceMemory::operator=(DeviceMemory&& o) noexcept {
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

void DeviceMemory::reset() {
  if (ptr_ && owner_) owner_->release(ptr_);
  owner_ = nullptr;
  ptr_ = nullptr;
  bytes_ = 0;
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
