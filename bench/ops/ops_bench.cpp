// Micro-benchmarks of the CPU backend's Linear (oneDNN, packed weights) and attention kernels at
// JinaBERT-v2-small shapes. Reports GFLOP/s (2*M*N*K for Linear; 4*L*L*H per sequence for
// attention, i.e. the two matrix products, softmax not counted).
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <vector>

#include "backends/cpu/cpu_backend.h"

namespace {

using embd::DType;
using embd::Mat;
namespace be = embd::backend;

std::vector<std::uint8_t> random_bytes(std::size_t n, DType t, float scale, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> f(n);
  for (auto& x : f) x = dist(rng);
  std::vector<std::uint8_t> out(n * embd::dtype_size(t));
  embd::convert(f.data(), DType::kF32, out.data(), t, n);
  return out;
}

// Args: M, K, N, dtype (0 f32, 1 f16, 2 bf16), threads.
void BM_Linear(benchmark::State& state) {
  const std::int64_t m = state.range(0), k = state.range(1), n = state.range(2);
  const auto dt = static_cast<DType>(state.range(3));
  auto backend = be::cpu::make_cpu_backend(static_cast<int>(state.range(4)));
  if (!backend->supports(be::Op::kLinear, dt)) {
    state.SkipWithError("dtype not supported on this CPU");
    return;
  }
  const auto w = random_bytes(static_cast<std::size_t>(n * k), DType::kF32, 0.05f, 1);
  std::vector<float> bias(static_cast<std::size_t>(n), 0.1f);
  const embd::HostTensor wt{"w", DType::kF32, {n, k}, w.data()};
  const embd::HostTensor bt{"b", DType::kF32, {n}, bias.data()};
  auto prepared = backend->prepare_linear(wt, &bt, dt);
  if (!prepared.ok()) {
    state.SkipWithError(prepared.status().to_string().c_str());
    return;
  }
  auto x = random_bytes(static_cast<std::size_t>(m * k), dt, 1.0f, 2);
  std::vector<std::uint8_t> y(static_cast<std::size_t>(m * n) * embd::dtype_size(dt));
  be::LinearArgs args{prepared.value().get(), Mat::of(x.data(), dt, m, k),
                      Mat::of(y.data(), dt, m, n), be::Activation::kNone};
  for (auto _ : state) {
    if (!backend->linear(args).ok()) state.SkipWithError("linear failed");
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * m * n * k * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void linear_args(benchmark::internal::Benchmark* b) {
  const std::int64_t shapes[4][2] = {{512, 1536}, {512, 512}, {512, 4096}, {2048, 512}};
  for (int threads : {1, 0}) {
    for (std::int64_t dt : {0, 2, 1}) {
      for (std::int64_t m : {16, 128, 2048}) {
        for (const auto& s : shapes) b->Args({m, s[0], s[1], dt, threads});
      }
    }
  }
  b->ArgNames({"M", "K", "N", "dtype", "threads"});
}
BENCHMARK(BM_Linear)->Apply(linear_args)->UseRealTime()->Unit(benchmark::kMicrosecond);

// A server's batches have ever-changing token counts: M cycles through 64 distinct values, so
// every call pays for a oneDNN primitive (the per-weight cache holds fewer). Args: K, N, dtype.
void BM_LinearVaryingM(benchmark::State& state) {
  const std::int64_t k = state.range(0), n = state.range(1), max_m = 80;
  const auto dt = static_cast<DType>(state.range(2));
  auto backend = be::cpu::make_cpu_backend(1);
  const auto w = random_bytes(static_cast<std::size_t>(n * k), DType::kF32, 0.05f, 1);
  const embd::HostTensor wt{"w", DType::kF32, {n, k}, w.data()};
  auto prepared = backend->prepare_linear(wt, nullptr, dt);
  if (!prepared.ok()) {
    state.SkipWithError(prepared.status().to_string().c_str());
    return;
  }
  auto x = random_bytes(static_cast<std::size_t>(max_m * k), dt, 1.0f, 2);
  std::vector<std::uint8_t> y(static_cast<std::size_t>(max_m * n) * embd::dtype_size(dt));
  std::int64_t m = 17, flops = 0;
  for (auto _ : state) {
    be::LinearArgs args{prepared.value().get(), Mat::of(x.data(), dt, m, k),
                        Mat::of(y.data(), dt, m, n), be::Activation::kNone};
    if (!backend->linear(args).ok()) state.SkipWithError("linear failed");
    flops += 2 * m * n * k;
    m = m == max_m ? 17 : m + 1;
  }
  state.counters["GFLOP/s"] = benchmark::Counter(static_cast<double>(flops) * 1e-9,
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LinearVaryingM)->Args({512, 512, 0})->Args({512, 512, 2})->UseRealTime()
    ->Unit(benchmark::kMicrosecond)->ArgNames({"K", "N", "dtype"});

// Args: L (one sequence), heads, head_dim, dtype, alibi, threads.
void BM_Attention(benchmark::State& state) {
  const std::int64_t len = state.range(0);
  const int heads = static_cast<int>(state.range(1)), d = static_cast<int>(state.range(2));
  const auto dt = static_cast<DType>(state.range(3));
  auto backend = be::cpu::make_cpu_backend(static_cast<int>(state.range(5)));
  const std::int64_t hidden = std::int64_t{heads} * d;
  auto qkv = random_bytes(static_cast<std::size_t>(len * 3 * hidden), dt, 1.0f, 3);
  std::vector<std::uint8_t> out(static_cast<std::size_t>(len * hidden) * embd::dtype_size(dt));
  const std::vector<std::int32_t> cu{0, static_cast<std::int32_t>(len)};
  std::vector<float> slopes(static_cast<std::size_t>(heads));
  for (int h = 0; h < heads; ++h) slopes[h] = std::pow(2.0f, -8.0f * (h + 1) / heads);
  be::AttentionArgs a;
  a.qkv = Mat::of(qkv.data(), dt, len, 3 * hidden);
  a.out = Mat::of(out.data(), dt, len, hidden);
  a.cu_seqlens = cu.data();
  a.cu_seqlens_host = cu.data();
  a.batch = 1;
  a.max_seqlen = len;
  a.num_heads = heads;
  a.head_dim = d;
  a.scale = 1.0f / std::sqrt(static_cast<float>(d));
  a.alibi_slopes = state.range(4) ? slopes.data() : nullptr;
  for (auto _ : state) {
    if (!backend->attention(a).ok()) state.SkipWithError("attention failed");
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(4.0 * len * len * hidden * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void attention_args(benchmark::internal::Benchmark* b) {
  for (int threads : {1, 0}) {
    for (std::int64_t dt : {0, 2}) {
      for (std::int64_t len : {128, 2048, 8192}) b->Args({len, 8, 64, dt, 1, threads});
    }
  }
  b->Args({2048, 8, 64, 0, 0, 1});  // no ALiBi: no key block can be skipped
  b->ArgNames({"L", "heads", "d", "dtype", "alibi", "threads"});
}
BENCHMARK(BM_Attention)->Apply(attention_args)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
