// Linear layers on oneDNN 2.6 matmul: y = x W^T + b (+ GELU(erf) / ReLU fused as a post-op).
//
// The weight is reordered once, at prepare time, into the blocked layout oneDNN's brgemm kernel
// wants (plain [N, K] weights are re-packed on every call and lose 25-45% at small M; see
// research/cpu-gemm.md). oneDNN 2.6 has no runtime-M brgemm (a runtime M falls back to the
// slower gemm:jit), so each weight keeps a small cache of primitives keyed by M.
//
// Compute dtypes: F32 and BF16 run natively in oneDNN (BF16: weights and activations BF16, F32
// accumulation). oneDNN 2.6 has no F16 matmul on CPUs, so F16 keeps the weight in F32 (an exact
// widening of the F16-rounded weight), widens the F16 activations into an F32 scratch, runs the
// F32 GEMM and rounds the output to F16 once.
//
// Not thread-safe (the primitive cache mutates): one backend, one executor thread. Errors:
// oneDNN exceptions are caught here and returned as kDeviceError / kUnsupported.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "backends/backend.h"

namespace embd::backend::cpu {

class CpuLinearWeight;

// True when oneDNN can run a matmul with this compute dtype on this CPU.
bool linear_supported(DType compute_dtype);

Result<std::unique_ptr<LinearWeight>> prepare_cpu_linear(const HostTensor& weight,
                                                         const HostTensor* bias,
                                                         DType compute_dtype);

// `scratch` is the backend's reusable F32 staging buffer (used by the F16 path).
Status run_cpu_linear(const LinearArgs& a, std::vector<float>& scratch);

}  // namespace embd::backend::cpu
