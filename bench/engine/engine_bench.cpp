// Engine benchmarks: each DESIGN.md workload (q16, b32x128, b512x128, b8x2048, b1x8192, mixed4096
// in its three submission modes, q16 under a batch backlog) as a Google Benchmark case with
// manual timing, reporting tokens/s, embeddings/s and p50/p99 latency as counters.
//
// The model and device come from the environment, so the same binary runs anywhere:
//   EMBD_BENCH_MODEL  (default: the tiny-jina fixture)   EMBD_BENCH_DEVICE (default: cpu)
//   EMBD_BENCH_DTYPE  (default: auto)                    EMBD_BENCH_THREADS (default: 0 = all)
// Example: EMBD_BENCH_MODEL=jinaai/jina-embeddings-v2-small-en bin/engine_bench --benchmark_filter=q16
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "embd/engine.hpp"
#include "workloads.h"

namespace {

namespace wl = embd::workloads;

std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

struct Fixture {
  std::unique_ptr<embd::Engine> engine;
  std::unique_ptr<wl::TextFactory> factory;
  std::string error;
};

// Loads the engine once for every case.
Fixture& fixture() {
  static Fixture f = [] {
    Fixture out;
    embd::LoadOptions options;
    options.device = env_or("EMBD_BENCH_DEVICE", "cpu");
    options.dtype = env_or("EMBD_BENCH_DTYPE", "auto");
    options.threads = std::atoi(env_or("EMBD_BENCH_THREADS", "0").c_str());
    auto engine = embd::Engine::load(env_or("EMBD_BENCH_MODEL", EMBD_FIXTURES_DIR "/models/tiny-jina"), options);
    if (!engine.ok()) {
      out.error = engine.status().to_string();
      return out;
    }
    auto factory = wl::TextFactory::create(**engine, wl::BenchConfig{}.seed);
    if (!factory.ok()) {
      out.error = factory.status().to_string();
      return out;
    }
    out.engine = std::move(engine).value();
    out.factory = std::make_unique<wl::TextFactory>(std::move(*factory));
    return out;
  }();
  return f;
}

void run_case(benchmark::State& state, const std::string& name, wl::BenchConfig config) {
  Fixture& f = fixture();
  if (!f.engine) {
    state.SkipWithError(f.error.c_str());
    return;
  }
  wl::WorkloadResult total;
  std::vector<double> p50s, p99s;
  for (auto _ : state) {
    auto result = wl::run_workload(*f.engine, *f.factory, name, config);
    if (!result.ok()) {
      state.SkipWithError(result.status().to_string().c_str());
      return;
    }
    if (result->skipped) {
      state.SkipWithError(("skipped: " + result->note).c_str());
      return;
    }
    state.SetIterationTime(result->seconds);
    total.texts += result->texts;
    total.tokens += result->tokens;
    total.seconds += result->seconds;
    p50s.push_back(result->p50_ms);
    p99s.push_back(result->p99_ms);
    total.backlog_tokens_per_s = result->backlog_tokens_per_s;
  }
  state.counters["tokens/s"] = benchmark::Counter(double(total.tokens) / total.seconds);
  state.counters["embeddings/s"] = benchmark::Counter(double(total.texts) / total.seconds);
  // Latency: the median over iterations of each iteration's own p50 / p99.
  state.counters["p50_ms"] = wl::percentile(p50s, 50);
  state.counters["p99_ms"] = wl::percentile(p99s, 50);
  if (config.background) state.counters["backlog_tokens/s"] = total.backlog_tokens_per_s;
}

void register_cases() {
  for (const auto& name : wl::workload_names()) {
    if (name == "mixed4096") continue;
    benchmark::RegisterBenchmark(name.c_str(), [name](benchmark::State& s) { run_case(s, name, {}); })
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }
  for (auto mode : {wl::MixedMode::kConcurrent, wl::MixedMode::kSequential, wl::MixedMode::kSingleBatch}) {
    wl::BenchConfig config;
    config.mode = mode;
    std::string label = std::string("mixed4096/") + wl::mixed_mode_name(mode);
    benchmark::RegisterBenchmark(label.c_str(), [config](benchmark::State& s) { run_case(s, "mixed4096", config); })
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }
  wl::BenchConfig background;
  background.background = true;
  benchmark::RegisterBenchmark("q16/background", [background](benchmark::State& s) { run_case(s, "q16", background); })
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
}

}  // namespace

int main(int argc, char** argv) {
  register_cases();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
