// Types shared by the CUDA kernel launchers (*_launch.h). Launchers are plain host functions
// that enqueue one kernel on the given stream and return cudaGetLastError(); they trust their
// arguments (the backend checks what the kernels assume). This header is self-contained (no embd
// headers) so .cu files compile without the C++20 core headers.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace embd::backend::cuda {

// Element type of an activation buffer. The values equal embd::DType's (checked in the backend).
enum class ElemType : int { kF32 = 0, kF16 = 1, kBF16 = 2 };

// Pointwise activation applied by the kernels (values equal embd::backend::Activation's).
enum class ActKind : int { kNone = 0, kGeluErf = 1, kRelu = 2 };

}  // namespace embd::backend::cuda
