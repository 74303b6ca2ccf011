// The CPU backend: oneDNN matmuls with weights packed at load, and embd's own fused kernels
// (runtime ISA dispatch: AVX-512 where present, AVX2 baseline, scalar fallback; no -march=native).
//
// Dtypes: F32 and BF16 run natively (BF16 GEMMs use AVX512_BF16 when present; oneDNN emulates it
// otherwise, so preferred_dtype() picks BF16 only on such CPUs). F16: oneDNN 2.6 has no F16
// matmul on CPUs without AVX512_FP16, so an F16 Linear keeps its weight in F32 (the exact
// widening of the F16-rounded weight), widens the F16 activations to an F32 scratch, runs the F32
// GEMM and rounds the output to F16 once; the other kernels read/write F16 and compute in F32.
// preferred_dtype(F16) is F32.
//
// Threading: kernels use OpenMP (oneDNN's runtime) with `threads` threads, set on every call from
// the driving thread. Like every Backend, an instance is driven by one thread at a time.
// Memory: allocate() returns 64-byte-aligned host memory; upload/download are memcpy.
#pragma once

#include <memory>

#include "backends/backend.h"

namespace embd::backend::cpu {

// threads <= 0: all available cores.
std::unique_ptr<Backend> make_cpu_backend(int threads);

}  // namespace embd::backend::cpu
