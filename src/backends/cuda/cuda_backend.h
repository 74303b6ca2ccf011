// The CUDA backend: cuBLASLt GEMMs and embd's own kernels (varlen flash attention with in-kernel
// ALiBi, fused LayerNorms, GLU, pooling). Every method sets its device first, so the backend may
// be created on one thread and driven by another (never by two at once).
#pragma once

#include <memory>

#include "backends/backend.h"

namespace embd::backend::cuda {

int device_count();
Result<std::unique_ptr<Backend>> make_cuda_backend(int device);

}  // namespace embd::backend::cuda
