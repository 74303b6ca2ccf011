// The CPU backend: oneDNN matmuls with weights packed at load, and embd's own fused kernels
// (runtime ISA dispatch: AVX-512 where present, AVX2 baseline, scalar fallback).
#pragma once

#include <memory>

#include "backends/backend.h"

namespace embd::backend::cpu {

// threads <= 0: all available cores.
std::unique_ptr<Backend> make_cpu_backend(int threads);

}  // namespace embd::backend::cpu
