// The standard normal CDF Phi(x), for the erf GELU x * Phi(x) in the fused gated GEMM's epilogue,
// which keeps the tensor cores idle while it runs. erff costs ~30 instructions an output (two
// predicated polynomials and an exp); this form takes ~16 (with the TMA stores, -8 to -11% of the
// kernel: see gated_gemm_sm90a.cu). Plain C++ on the host, so that a CPU test can check it.
#pragma once

#include <cmath>

#if defined(__CUDACC__)
#define EMBD_HOST_DEVICE __host__ __device__
#else
#define EMBD_HOST_DEVICE
#endif

namespace embd::backend::cuda {

// Within 1e-6 of Phi(x) for every float x (8e-7 measured; tests/backends/normal_cdf_test.cpp), so
// far below 16-bit rounding. Phi(-t) for t = |x| is 2^p(v): p is the degree-9 Chebyshev
// interpolant of log2 Phi(-t) on t in [0, 5.5], in v = t / 2.75 - 1. Past 5.5, Phi(-t) < 2e-8 and
// is taken as Phi(-5.5). Phi(x) = 1 - Phi(-x) for x >= 0. A NaN x gives a finite Phi; x * Phi
// stays NaN.
EMBD_HOST_DEVICE inline float normal_cdf_fast(float x) {
  const float t = fminf(fabsf(x), 5.5f);
  const float v = fmaf(t, 2.0f / 5.5f, -1.0f);
  float p = 6.125098977e-04f;
  p = fmaf(p, v, -3.204157103e-04f);
  p = fmaf(p, v, -3.663263727e-03f);
  p = fmaf(p, v, 1.201784371e-02f);
  p = fmaf(p, v, -3.109428950e-02f);
  p = fmaf(p, v, 7.767015425e-02f);
  p = fmaf(p, v, -1.833238361e-01f);
  p = fmaf(p, v, -5.023888386e+00f);
  p = fmaf(p, v, -1.210764053e+01f);
  p = fmaf(p, v, -8.390587362e+00f);
#if defined(__CUDA_ARCH__)
  float tail;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(tail) : "f"(p));
#else
  const float tail = std::exp2(p);
#endif
  return x >= 0.0f ? 1.0f - tail : tail;
}

}  // namespace embd::backend::cuda
