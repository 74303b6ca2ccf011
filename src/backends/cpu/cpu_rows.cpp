// Row-wise kernels: embedding gather + LayerNorm, residual add + LayerNorm, GLU, pooling.
// Each row is widened to F32 in a per-thread buffer, computed in F32 and rounded once.
#include <omp.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "backends/cpu/cpu_isa.h"
#include "backends/cpu/cpu_kernels.h"
#include "backends/cpu/cpu_vec.h"

namespace embd::backend::cpu {
namespace {

const std::uint8_t* row_ptr(const Mat& m, std::int64_t r) {
  return static_cast<const std::uint8_t*>(m.data) +
         static_cast<std::size_t>(r * m.ld) * dtype_size(m.dtype);
}
std::uint8_t* row_ptr_mut(const Mat& m, std::int64_t r) {
  return static_cast<std::uint8_t*>(m.data) +
         static_cast<std::size_t>(r * m.ld) * dtype_size(m.dtype);
}

void load_row(const Mat& m, std::int64_t r, float* dst) {
  convert(row_ptr(m, r), m.dtype, dst, DType::kF32, static_cast<std::size_t>(m.cols));
}

// Adds row r of m into acc (F32), through a conversion buffer.
void add_row(const Mat& m, std::int64_t r, float* acc, float* tmp, std::int64_t n) {
  if (m.dtype == DType::kF32) {
    const auto* src = reinterpret_cast<const float*>(row_ptr(m, r));
    for (std::int64_t i = 0; i < n; ++i) acc[i] += src[i];
    return;
  }
  convert(row_ptr(m, r), m.dtype, tmp, DType::kF32, static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) acc[i] += tmp[i];
}

// Two passes over the F32 row (mean, then centred variance) for accuracy. Compiled per ISA
// below and picked at run time (explicit dispatch, not target_clones: ifunc resolvers run before
// the sanitizer runtimes start and crash TSan builds).
EMBD_INLINE void layernorm_row_impl(float* x, std::int64_t n, const float* gamma,
                                    const float* beta, float eps) {
  float sum = 0.0f;
  for (std::int64_t i = 0; i < n; ++i) sum += x[i];
  const float mean = sum / static_cast<float>(n);
  float var = 0.0f;
  for (std::int64_t i = 0; i < n; ++i) {
    const float c = x[i] - mean;
    var += c * c;
  }
  const float rstd = 1.0f / std::sqrt(var / static_cast<float>(n) + eps);
  for (std::int64_t i = 0; i < n; ++i) x[i] = (x[i] - mean) * rstd * gamma[i] + beta[i];
}

__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"))) void layernorm_row_avx512(
    float* x, std::int64_t n, const float* gamma, const float* beta, float eps) {
  layernorm_row_impl(x, n, gamma, beta, eps);
}
__attribute__((target("avx2,fma"))) void layernorm_row_avx2(float* x, std::int64_t n,
                                                            const float* gamma, const float* beta,
                                                            float eps) {
  layernorm_row_impl(x, n, gamma, beta, eps);
}

void layernorm_row(float* x, std::int64_t n, const float* gamma, const float* beta, float eps) {
  switch (cpu_features().isa) {
    case Isa::kAvx512: return layernorm_row_avx512(x, n, gamma, beta, eps);
    case Isa::kAvx2: return layernorm_row_avx2(x, n, gamma, beta, eps);
    case Isa::kScalar: return layernorm_row_impl(x, n, gamma, beta, eps);
  }
}

// out = act(a) * b over n elements, W lanes at a time (the tail goes through a padded copy so
// every element sees the same arithmetic).
template <int W>
EMBD_INLINE typename vec::Vec<W>::F glu_step(typename vec::Vec<W>::F x, typename vec::Vec<W>::F y,
                                             Activation act) {
  if (act == Activation::kGeluErf) x = 0.5f * x * (1.0f + vec::erf<W>(x * 0.70710678118654752f));
  if (act == Activation::kRelu) x = x > 0.0f ? x : 0.0f;
  return x * y;
}

template <int W>
EMBD_INLINE void glu_span(const float* a, const float* b, float* out, std::int64_t n,
                          Activation act) {
  std::int64_t i = 0;
  for (; i + W <= n; i += W) vec::store<W>(out + i, glu_step<W>(vec::load<W>(a + i), vec::load<W>(b + i), act));
  if (i < n) {
    float ta[W] = {}, tb[W] = {}, to[W];
    std::memcpy(ta, a + i, sizeof(float) * (n - i));
    std::memcpy(tb, b + i, sizeof(float) * (n - i));
    vec::store<W>(to, glu_step<W>(vec::load<W>(ta), vec::load<W>(tb), act));
    std::memcpy(out + i, to, sizeof(float) * (n - i));
  }
}

__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"))) void glu_span_avx512(
    const float* a, const float* b, float* out, std::int64_t n, Activation act) {
  glu_span<16>(a, b, out, n, act);
}
__attribute__((target("avx2,fma"))) void glu_span_avx2(const float* a, const float* b, float* out,
                                                       std::int64_t n, Activation act) {
  glu_span<8>(a, b, out, n, act);
}
void glu_span_sse(const float* a, const float* b, float* out, std::int64_t n, Activation act) {
  glu_span<4>(a, b, out, n, act);
}

}  // namespace

void embed_layernorm_kernel(const EmbedLayerNormArgs& a) {
  const std::int64_t h = a.out.cols;
#pragma omp parallel
  {
    std::vector<float> x(static_cast<std::size_t>(2 * h));
    float* tmp = x.data() + h;
#pragma omp for schedule(static)
    for (std::int64_t t = 0; t < a.tokens; ++t) {
      load_row(a.word_table, a.ids[t], x.data());
      if (a.type_table.data) add_row(a.type_table, a.type_ids ? a.type_ids[t] : 0, x.data(), tmp, h);
      if (a.position_table.data && a.positions) {
        add_row(a.position_table, a.positions[t], x.data(), tmp, h);
      }
      layernorm_row(x.data(), h, a.gamma, a.beta, a.eps);
      convert(x.data(), DType::kF32, row_ptr_mut(a.out, t), a.out.dtype, static_cast<std::size_t>(h));
    }
  }
}

void add_layernorm_kernel(const AddLayerNormArgs& a) {
  const std::int64_t h = a.x.cols;
#pragma omp parallel
  {
    std::vector<float> x(static_cast<std::size_t>(2 * h));
    float* tmp = x.data() + h;
#pragma omp for schedule(static)
    for (std::int64_t t = 0; t < a.x.rows; ++t) {
      load_row(a.x, t, x.data());
      if (a.bias) {
        for (std::int64_t i = 0; i < h; ++i) x[static_cast<std::size_t>(i)] += a.bias[i];
      }
      if (a.residual.data) add_row(a.residual, t, x.data(), tmp, h);
      layernorm_row(x.data(), h, a.gamma, a.beta, a.eps);
      convert(x.data(), DType::kF32, row_ptr_mut(a.out, t), a.out.dtype, static_cast<std::size_t>(h));
    }
  }
}

void glu_kernel(const GluArgs& a) {
  const std::int64_t inter = a.out.cols;
  auto* span = glu_span_sse;
  if (cpu_features().isa == Isa::kAvx512) span = glu_span_avx512;
  if (cpu_features().isa == Isa::kAvx2) span = glu_span_avx2;
#pragma omp parallel
  {
    std::vector<float> g(static_cast<std::size_t>(3 * inter));
    float* out = g.data() + 2 * inter;
#pragma omp for schedule(static)
    for (std::int64_t t = 0; t < a.in.rows; ++t) {
      convert(row_ptr(a.in, t), a.in.dtype, g.data(), DType::kF32, static_cast<std::size_t>(2 * inter));
      const float* act_half = a.activate_first_half ? g.data() : g.data() + inter;
      const float* lin_half = a.activate_first_half ? g.data() + inter : g.data();
      span(act_half, lin_half, out, inter, a.activation);
      convert(out, DType::kF32, row_ptr_mut(a.out, t), a.out.dtype, static_cast<std::size_t>(inter));
    }
  }
}

void pool_kernel(const PoolArgs& a) {
  const std::int64_t h = a.hidden.cols;
#pragma omp parallel
  {
    std::vector<float> tmp(static_cast<std::size_t>(h));
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t b = 0; b < a.batch; ++b) {
      const std::int64_t first = a.cu_seqlens_host[b], len = a.cu_seqlens_host[b + 1] - first;
      float* out = a.out + b * h;
      std::memset(out, 0, sizeof(float) * static_cast<std::size_t>(h));
      if (len <= 0) continue;
      if (a.mode == PoolMode::kCls) {
        load_row(a.hidden, first, out);
        continue;
      }
      for (std::int64_t t = first; t < first + len; ++t) add_row(a.hidden, t, out, tmp.data(), h);
      const float inv = 1.0f / static_cast<float>(len);
      for (std::int64_t i = 0; i < h; ++i) out[i] *= inv;
    }
  }
}

}  // namespace embd::backend::cpu
