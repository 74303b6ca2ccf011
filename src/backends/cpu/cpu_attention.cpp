// Padding-free flash-style attention with in-kernel ALiBi or a relative-position table (see
// cpu_kernels.h).
//
// Per work item (sequence, head, block of kBq queries) the kernel streams key blocks of kBk keys:
// S = (scale q) K^T, S -= slope |i - j| (or S += the relative-position table's entry for j - i),
// online softmax in F32 (running max m and sum l per query, the output rescaled when the max
// grows), O += P V. Memory per thread is
// O(kBq * (kBk + d)); nothing is O(L^2). Keys (transposed) and values of every head are first
// staged in F32 once, O(T * H), so the inner loops read contiguous F32 whatever the dtype.
//
// ALiBi block skipping: key blocks are visited from the diagonal outwards, and a block is skipped
// when a Cauchy-Schwarz bound (|q| max|k| - slope * distance) proves every logit in it lies more
// than 88 below the running max of its row. Our exp() returns exactly 0 there, so skipping gives
// the same output as computing the block; far blocks of steep-slope heads cost nothing.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "backends/cpu/cpu_isa.h"
#include "backends/cpu/cpu_kernels.h"
#include "backends/cpu/cpu_vec.h"

namespace embd::backend::cpu {
namespace {

constexpr int kBq = 64;  // queries per work item
constexpr int kBk = 64;  // keys per block (a multiple of every vector width x unroll used)
static_assert(kBq == kBk, "the diagonal key block of query block b is key block b");

struct Ctx {
  const AttentionArgs* a;
  const float* kt;  // [num_heads * d][tpad]: element (h*d + c, t) = key t, channel c of head h
  const float* v;   // [num_heads][tokens][d]
  const float* knorm;  // [num_heads][tokens]: |k| per head and token
  std::int64_t tpad;
  std::int64_t tokens;
};

struct Item {
  std::int32_t seq, head, qblock;
};

struct ThreadScratch {
  float* q;  // [kBq][d], pre-scaled queries
  float* o;  // [kBq][d], unnormalised output
  float* s;  // [kBq][kBk], logits then probabilities
  float* m;  // [kBq], running max
  float* l;  // [kBq], running sum
  float* qn;  // [kBq], |scale q|
};

// s[r][0..kBk) = q[r] . kt[:, 0..kBk) for R query rows; U vectors of W keys per register tile.
template <int W, int U, int R>
EMBD_INLINE void qk_rows(const float* q, int d, const float* kt, std::int64_t ldk, float* s) {
  using F = typename vec::Vec<W>::F;
  for (int jc = 0; jc < kBk; jc += U * W) {
    F acc[R][U] = {};
    for (int c = 0; c < d; ++c) {
      const float* k = kt + c * ldk + jc;
      F kv[U];
      for (int u = 0; u < U; ++u) kv[u] = vec::load<W>(k + u * W);
      for (int r = 0; r < R; ++r) {
        const F qb = vec::splat<W>(q[r * d + c]);
        for (int u = 0; u < U; ++u) acc[r][u] += qb * kv[u];
      }
    }
    for (int r = 0; r < R; ++r)
      for (int u = 0; u < U; ++u) vec::store<W>(s + r * kBk + jc + u * W, acc[r][u]);
  }
}

// o[r][c0 .. c0 + NV*W) += sum_j p[r][j] v[j][same columns], for R rows.
template <int W, int NV, int R>
EMBD_INLINE void pv_rows(const float* p, const float* v, int nk, int d, float* o, int c0) {
  using F = typename vec::Vec<W>::F;
  F acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int u = 0; u < NV; ++u) acc[r][u] = vec::load<W>(o + r * d + c0 + u * W);
  for (int j = 0; j < nk; ++j) {
    F vv[NV];
    for (int u = 0; u < NV; ++u) vv[u] = vec::load<W>(v + j * d + c0 + u * W);
    for (int r = 0; r < R; ++r) {
      const F pb = vec::splat<W>(p[r * kBk + j]);
      for (int u = 0; u < NV; ++u) acc[r][u] += pb * vv[u];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int u = 0; u < NV; ++u) vec::store<W>(o + r * d + c0 + u * W, acc[r][u]);
}

template <int W, int NV, int R>
EMBD_INLINE void pv_cols(const float* p, const float* v, int nk, int d, float* o, int nq, int c0) {
  int i = 0;
  for (; i + R <= nq; i += R) pv_rows<W, NV, R>(p + i * kBk, v, nk, d, o + i * d, c0);
  for (; i < nq; ++i) pv_rows<W, NV, 1>(p + i * kBk, v, nk, d, o + i * d, c0);
}

// O += P V with vectors of W columns (W divides d).
template <int W, int R>
EMBD_INLINE void pv_block(const float* p, const float* v, int nk, int d, float* o, int nq) {
  int c = 0;
  for (; c + 4 * W <= d; c += 4 * W) pv_cols<W, 4, R>(p, v, nk, d, o, nq, c);
  switch ((d - c) / W) {
    case 3: pv_cols<W, 3, R>(p, v, nk, d, o, nq, c); break;
    case 2: pv_cols<W, 2, R>(p, v, nk, d, o, nq, c); break;
    case 1: pv_cols<W, 1, R>(p, v, nk, d, o, nq, c); break;
    default: break;
  }
}

template <int WMAX, int R>
EMBD_INLINE void pv(const float* p, const float* v, int nk, int d, float* o, int nq) {
  if (WMAX >= 16 && d % 16 == 0) return pv_block<(WMAX >= 16 ? 16 : 4), R>(p, v, nk, d, o, nq);
  if (WMAX >= 8 && d % 8 == 0) return pv_block<(WMAX >= 8 ? 8 : 4), R>(p, v, nk, d, o, nq);
  if (d % 4 == 0) return pv_block<4, R>(p, v, nk, d, o, nq);
  for (int i = 0; i < nq; ++i)
    for (int j = 0; j < nk; ++j)
      for (int c = 0; c < d; ++c) o[i * d + c] += p[i * kBk + j] * v[j * d + c];
}

// A head's relative-position table (AttentionArgs::relative_bias) centred on distance 0:
// entry r (|r| <= reach) biases key j = i + r of query i; farther keys use the end entries.
struct RelativeRow {
  const float* centre = nullptr;
  std::int64_t reach = 0;
};

// The position bias (ALiBi or relative), online-softmax statistics and the output rescale for
// one block of keys.
template <int W>
EMBD_INLINE void softmax_block(const ThreadScratch& ts, int nq, int nk, std::int64_t q0,
                               std::int64_t j0, float slope, RelativeRow rel, int d) {
  using F = typename vec::Vec<W>::F;
  F iota;
  for (int k = 0; k < W; ++k) iota[k] = static_cast<float>(k);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for (int i = 0; i < nq; ++i) {
    float* row = ts.s + i * kBk;
    for (int j = nk; j < kBk; ++j) row[j] = neg_inf;
    if (rel.centre != nullptr) {
      const std::int64_t r0 = j0 - (q0 + i);  // j - i of the block's first key
      for (int j = 0; j < nk; ++j) row[j] += rel.centre[std::clamp(r0 + j, -rel.reach, rel.reach)];
    }
    const float qi = static_cast<float>(q0 + i);
    F vmax = vec::splat<W>(neg_inf);
    for (int jv = 0; jv < kBk; jv += W) {
      F x = vec::load<W>(row + jv);
      if (slope != 0.0f) {
        F dist = qi - (iota + static_cast<float>(j0 + jv));
        dist = dist < 0.0f ? -dist : dist;
        x = x - dist * slope;
        vec::store<W>(row + jv, x);
      }
      vmax = x > vmax ? x : vmax;
    }
    const float m_new = std::max(ts.m[i], vec::hmax<W>(vmax));
    const float corr = std::exp(ts.m[i] - m_new);  // 0 on the first block (m = -inf)
    F sum = {};
    for (int jv = 0; jv < kBk; jv += W) {
      const F p = vec::exp<W>(vec::load<W>(row + jv) - m_new);
      vec::store<W>(row + jv, p);
      sum += p;
    }
    ts.l[i] = ts.l[i] * corr + vec::hsum<W>(sum);
    ts.m[i] = m_new;
    if (corr != 1.0f) {
      float* o = ts.o + i * d;
      for (int c = 0; c < d; ++c) o[c] *= corr;
    }
  }
}

// True when every logit of key block [j0, j0 + nk) is provably below each row's running max by
// more than exp()'s zero cutoff (88, with a relative margin for F32 rounding of the bound).
EMBD_INLINE bool block_negligible(const ThreadScratch& ts, const float* kn, int nk, int nq,
                                  std::int64_t q0, std::int64_t j0, float slope) {
  float kmax = 0.0f;
  for (int j = 0; j < nk; ++j) kmax = std::max(kmax, kn[j]);
  for (int i = 0; i < nq; ++i) {
    const std::int64_t pos = q0 + i;
    const std::int64_t dist = pos < j0 ? j0 - pos : std::max<std::int64_t>(0, pos - (j0 + nk - 1));
    const float bias = slope * static_cast<float>(dist);
    const float bound = ts.qn[i] * kmax * 1.0001f - bias * 0.9999f;
    if (!(bound < ts.m[i] - 88.0f - 1e-4f * std::fabs(ts.m[i]))) return false;
  }
  return true;
}

template <int W, int U, int R>
EMBD_INLINE void process_item(const Ctx& cx, Item it, const ThreadScratch& ts) {
  const AttentionArgs& a = *cx.a;
  const int d = a.head_dim;
  const std::int64_t seq0 = a.cu_seqlens_host[it.seq];
  const std::int64_t len = a.cu_seqlens_host[it.seq + 1] - seq0;
  const std::int64_t q0 = static_cast<std::int64_t>(it.qblock) * kBq;
  const int nq = static_cast<int>(std::min<std::int64_t>(kBq, len - q0));
  const std::size_t es = dtype_size(a.qkv.dtype);
  const auto* qkv = static_cast<const std::uint8_t*>(a.qkv.data);
  for (int i = 0; i < nq; ++i) {
    const std::int64_t t = seq0 + q0 + i;
    float* q = ts.q + i * d;
    convert(qkv + (t * a.qkv.ld + it.head * d) * es, a.qkv.dtype, q, DType::kF32, d);
    const float* qb = a.q_bias ? a.q_bias + it.head * d : nullptr;
    float n2 = 0.0f;
    for (int c = 0; c < d; ++c) {
      q[c] = (qb ? q[c] + qb[c] : q[c]) * a.scale;
      n2 += q[c] * q[c];
    }
    ts.qn[i] = std::sqrt(n2);
  }
  std::fill(ts.o, ts.o + nq * d, 0.0f);
  std::fill(ts.m, ts.m + nq, -std::numeric_limits<float>::infinity());
  std::fill(ts.l, ts.l + nq, 0.0f);
  const float slope = a.alibi_slopes ? a.alibi_slopes[it.head] : 0.0f;
  RelativeRow rel;
  if (a.relative_bias != nullptr) {
    rel.reach = a.relative_reach;
    rel.centre = a.relative_bias + it.head * (2 * rel.reach + 1) + rel.reach;
  }
  const float* kt = cx.kt + static_cast<std::int64_t>(it.head) * d * cx.tpad + seq0;
  const float* vh = cx.v + (static_cast<std::int64_t>(it.head) * cx.tokens + seq0) * d;
  const float* kn = cx.knorm + static_cast<std::int64_t>(it.head) * cx.tokens + seq0;
  const std::int64_t nblocks = (len + kBk - 1) / kBk;
  for (std::int64_t step = 0; step < 2 * nblocks; ++step) {
    // Diagonal block first, then alternately left and right of it.
    const std::int64_t offset = (step + 1) / 2;
    const std::int64_t kb = step == 0 ? it.qblock : (step % 2 ? it.qblock - offset : it.qblock + offset);
    if (kb < 0 || kb >= nblocks) continue;
    const std::int64_t j0 = kb * kBk;
    const int nk = static_cast<int>(std::min<std::int64_t>(kBk, len - j0));
    if (slope > 0.0f && step > 0 && block_negligible(ts, kn + j0, nk, nq, q0, j0, slope)) continue;
    int i = 0;
    for (; i + R <= nq; i += R) qk_rows<W, U, R>(ts.q + i * d, d, kt + j0, cx.tpad, ts.s + i * kBk);
    for (; i < nq; ++i) qk_rows<W, U, 1>(ts.q + i * d, d, kt + j0, cx.tpad, ts.s + i * kBk);
    softmax_block<W>(ts, nq, nk, q0, j0, slope, rel, d);
    pv<W, R>(ts.s, vh + j0 * d, nk, d, ts.o, nq);
  }
  auto* out = static_cast<std::uint8_t*>(a.out.data);
  const std::size_t os = dtype_size(a.out.dtype);
  const float* vb = a.v_bias ? a.v_bias + it.head * d : nullptr;
  for (int i = 0; i < nq; ++i) {
    float* o = ts.o + i * d;
    const float inv = 1.0f / ts.l[i];
    for (int c = 0; c < d; ++c) o[c] = vb ? o[c] * inv + vb[c] : o[c] * inv;
    const std::int64_t t = seq0 + q0 + i;
    convert(o, DType::kF32, out + (t * a.out.ld + it.head * d) * os, a.out.dtype, d);
  }
}

__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,f16c"))) void item_avx512(
    const Ctx& cx, Item it, const ThreadScratch& ts) {
  process_item<16, 4, 4>(cx, it, ts);
}

__attribute__((target("avx2,fma,f16c"))) void item_avx2(const Ctx& cx, Item it,
                                                        const ThreadScratch& ts) {
  process_item<8, 4, 2>(cx, it, ts);
}

void item_scalar(const Ctx& cx, Item it, const ThreadScratch& ts) {
  process_item<4, 4, 2>(cx, it, ts);
}

// Keys transposed per head into kt, values per head into v, both F32.
void stage_kv(const AttentionArgs& a, std::int64_t tokens, std::int64_t tpad, float* kt, float* v,
              float* knorm) {
  const int d = a.head_dim;
  const std::int64_t hidden = static_cast<std::int64_t>(a.num_heads) * d;
  const std::size_t es = dtype_size(a.qkv.dtype);
  const auto* qkv = static_cast<const std::uint8_t*>(a.qkv.data);
#pragma omp parallel
  {
    std::vector<float> row(static_cast<std::size_t>(hidden));
#pragma omp for schedule(static)
    for (std::int64_t t = 0; t < tokens; ++t) {
      const std::uint8_t* base = qkv + t * a.qkv.ld * es;
      convert(base + hidden * es, a.qkv.dtype, row.data(), DType::kF32, hidden);
      for (std::int64_t hc = 0; hc < hidden; ++hc) kt[hc * tpad + t] = row[hc];
      for (int h = 0; h < a.num_heads; ++h) {
        float n2 = 0.0f;
        for (int c = 0; c < d; ++c) n2 += row[h * d + c] * row[h * d + c];
        knorm[h * tokens + t] = std::sqrt(n2);
      }
      convert(base + 2 * hidden * es, a.qkv.dtype, row.data(), DType::kF32, hidden);
      for (int h = 0; h < a.num_heads; ++h) {
        std::memcpy(v + (h * tokens + t) * d, row.data() + h * d, sizeof(float) * d);
      }
    }
#pragma omp for schedule(static)
    for (std::int64_t hc = 0; hc < hidden; ++hc) {
      std::fill(kt + hc * tpad + tokens, kt + (hc + 1) * tpad, 0.0f);
    }
  }
}

std::vector<Item> make_items(const AttentionArgs& a) {
  std::vector<Item> items;
  std::vector<std::int32_t> order(static_cast<std::size_t>(a.batch));
  for (std::int32_t b = 0; b < a.batch; ++b) order[b] = b;
  // Longest sequences first: their items cost the most, so dynamic scheduling balances better.
  auto len = [&](std::int32_t b) { return a.cu_seqlens_host[b + 1] - a.cu_seqlens_host[b]; };
  std::stable_sort(order.begin(), order.end(), [&](auto x, auto y) { return len(x) > len(y); });
  for (std::int32_t b : order) {
    const std::int32_t blocks = (len(b) + kBq - 1) / kBq;
    for (std::int32_t qb = 0; qb < blocks; ++qb)
      for (std::int32_t h = 0; h < a.num_heads; ++h) items.push_back({b, h, qb});
  }
  return items;
}

}  // namespace

void attention_kernel(const AttentionArgs& a, std::vector<float>& scratch) {
  if (a.batch <= 0) return;
  const std::int64_t tokens = a.cu_seqlens_host[a.batch];
  if (tokens <= 0) return;
  const int d = a.head_dim;
  const std::int64_t hidden = static_cast<std::int64_t>(a.num_heads) * d;
  const std::int64_t tpad = tokens + kBk;
  scratch.resize(static_cast<std::size_t>(hidden * (tpad + tokens) + a.num_heads * tokens));
  float* kt = scratch.data();
  float* v = kt + hidden * tpad;
  float* knorm = v + hidden * tokens;
  stage_kv(a, tokens, tpad, kt, v, knorm);
  const Ctx cx{&a, kt, v, knorm, tpad, tokens};
  const std::vector<Item> items = make_items(a);
  void (*fn)(const Ctx&, Item, const ThreadScratch&) = item_scalar;
  if (cpu_features().isa == Isa::kAvx512) fn = item_avx512;
  if (cpu_features().isa == Isa::kAvx2) fn = item_avx2;
  const std::int64_t n_items = static_cast<std::int64_t>(items.size());
#pragma omp parallel
  {
    std::vector<float> buf(static_cast<std::size_t>(2 * kBq * d + kBq * kBk + 3 * kBq));
    float* p = buf.data();
    const ThreadScratch ts{p, p + kBq * d, p + 2 * kBq * d, p + 2 * kBq * d + kBq * kBk,
                           p + 2 * kBq * d + kBq * kBk + kBq, p + 2 * kBq * d + kBq * kBk + 2 * kBq};
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t i = 0; i < n_items; ++i) fn(cx, items[i], ts);
  }
}

}  // namespace embd::backend::cpu
