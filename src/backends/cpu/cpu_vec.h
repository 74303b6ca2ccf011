// Portable SIMD building blocks for the CPU kernels: GCC vector extensions of W floats. The same
// template code becomes AVX-512 (W = 16), AVX2 (W = 8) or SSE2 (W = 4) depending on the
// __attribute__((target)) of the function it is inlined into, which gives runtime ISA dispatch
// without -march=native. Everything here is force-inlined and stateless (thread-safe).
#pragma once

#include <cstdint>
#include <cstring>

#define EMBD_INLINE inline __attribute__((always_inline))

// Everything here is inlined into its caller, so the vector-argument ABI note does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace embd::backend::cpu::vec {

template <int W>
struct Vec {
  typedef float F __attribute__((vector_size(W * 4)));
  typedef std::int32_t I __attribute__((vector_size(W * 4)));
};

template <int W>
EMBD_INLINE typename Vec<W>::F load(const float* p) {
  typename Vec<W>::F v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

template <int W>
EMBD_INLINE void store(float* p, typename Vec<W>::F v) {
  std::memcpy(p, &v, sizeof(v));
}

template <int W>
EMBD_INLINE typename Vec<W>::F splat(float x) {
  typename Vec<W>::F v = {};
  return v + x;
}

template <int W>
EMBD_INLINE float hmax(typename Vec<W>::F v) {
  float m = v[0];
  for (int i = 1; i < W; ++i) m = v[i] > m ? v[i] : m;
  return m;
}

template <int W>
EMBD_INLINE float hsum(typename Vec<W>::F v) {
  float s = 0.0f;
  for (int i = 0; i < W; ++i) s += v[i];
  return s;
}

// e^x to ~2 ulp for x in [-87, 88]; exactly 0 below -87 (so -inf gives 0), saturates above 88.
// Range reduction x = n ln2 + r, |r| <= ln2/2, degree-6 Taylor for e^r, 2^n built in the bits.
template <int W>
EMBD_INLINE typename Vec<W>::F exp(typename Vec<W>::F x) {
  using F = typename Vec<W>::F;
  using I = typename Vec<W>::I;
  const F lo = splat<W>(-87.0f), hi = splat<W>(88.0f);
  const I underflow = x < lo;
  x = x < lo ? lo : x;
  x = x > hi ? hi : x;
  const F magic = splat<W>(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const F t = x * 1.44269504088896341f + magic;
  const F n = t - magic;
  F r = x - n * 0.693145751953125f;
  r = r - n * 1.42860682030941723212e-6f;
  F p = splat<W>(1.0f / 720.0f);
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const I bits = (((I)t - 0x4B400000) + 127) << 23;
  const F res = p * (F)bits;
  return underflow ? splat<W>(0.0f) : res;
}

// erf(x) as a rational minimax approximation on [-4, 4] (|x| > 4 rounds to +-1 in F32); the
// coefficients are Eigen's generic_fast_erf_float. Max error ~ a few F32 ulp.
template <int W>
EMBD_INLINE typename Vec<W>::F erf(typename Vec<W>::F x) {
  using F = typename Vec<W>::F;
  const F lo = splat<W>(-4.0f), hi = splat<W>(4.0f);
  x = x < lo ? lo : x;
  x = x > hi ? hi : x;
  const F x2 = x * x;
  F p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
  p = x2 * p + -2.10102402082508e-06f;
  p = x2 * p + -5.69250639462346e-05f;
  p = x2 * p + -7.34990630326855e-04f;
  p = x2 * p + -2.95459980854025e-03f;
  p = x2 * p + -1.60960333262415e-02f;
  p = x * p;
  F q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
  q = x2 * q + -1.68282697438203e-03f;
  q = x2 * q + -7.37332916720468e-03f;
  q = x2 * q + -1.42647390514189e-02f;
  return p / q;
}

}  // namespace embd::backend::cpu::vec
