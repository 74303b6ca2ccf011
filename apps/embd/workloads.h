// The benchmark workloads of DESIGN.md "Performance method", shared by `embd bench` and
// bench/engine: synthetic texts that tokenize to an exact number of tokens (deterministic seed),
// and runners that time them through the public Engine API.
//
// Workloads: q16 (single 16-token queries one at a time: latency), b32x128, b512x128, b8x2048,
// b1x8192 (requests of B texts of L tokens, one request at a time), mixed4096 (4096 texts with
// lognormal lengths, median ~120, clipped 8..2048, in one of three submission modes).
//
// Thread-safety: a TextFactory is immutable after create() and may be shared; run_workload() uses
// its own threads for concurrent modes and joins them before returning. Errors (engine failures,
// a tokenizer that cannot be driven to an exact length) come back as Status.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "embd/engine.hpp"
#include "embd/status.hpp"

namespace embd::workloads {

// Names in the order `all` runs them.
const std::vector<std::string>& workload_names();

// Builds texts of exact token counts (specials included) from single-token words.
class TextFactory {
 public:
  static Result<TextFactory> create(const Engine& engine, std::uint64_t seed);
  // `count` texts with the given token counts; verified with Engine::tokenize.
  Result<std::vector<std::string>> make(const std::vector<std::size_t>& lengths);
  // Restarts the word sequence, so each workload's texts depend only on (seed, workload).
  void reseed(std::uint64_t seed) { rng_.seed(seed); }
  std::size_t specials() const { return specials_; }
  std::size_t max_length() const { return max_length_; }

 private:
  TextFactory(const Engine& engine, std::vector<std::string> words, std::size_t specials,
              std::uint64_t seed);
  std::string random_words(std::size_t n);
  Status fix_length(std::string& text, std::size_t want);

  const Engine* engine_;
  std::vector<std::string> words_;
  std::size_t specials_;
  std::size_t max_length_;
  std::mt19937_64 rng_;
};

// Lognormal lengths with median ~120 tokens, clipped to [8, min(2048, max_length)].
std::vector<std::size_t> mixed_lengths(std::size_t count, std::size_t max_length, std::uint64_t seed);

enum class MixedMode { kConcurrent, kSequential, kSingleBatch };
const char* mixed_mode_name(MixedMode mode);

struct BenchConfig {
  int repeat = 1;                 // timed rounds per workload (after one warm-up)
  MixedMode mode = MixedMode::kConcurrent;
  bool background = false;        // q16 while a batch-priority backlog runs
  int concurrency = 32;           // submitting threads in concurrent mode
  std::uint64_t seed = 20240501;
};

struct WorkloadResult {
  std::string name;
  std::string mode;          // "sequential", "concurrent", "single-batch", "background"
  bool skipped = false;      // e.g. longer than the model's maximum length
  std::string note;          // why skipped, or extra context
  std::size_t requests = 0;
  std::size_t texts = 0;
  std::uint64_t tokens = 0;
  double seconds = 0;
  double tokens_per_s = 0;
  double embeddings_per_s = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double mean_ms = 0;
  // Means per request of the engine's phases (Embeddings::tokenization_seconds, queue_seconds,
  // inference_seconds): where a request's latency goes.
  double mean_tokenize_ms = 0;
  double mean_queue_ms = 0;
  double mean_inference_ms = 0;
  double backlog_tokens_per_s = 0;  // --background only: throughput of the batch backlog
  // From Engine::stats() over the timed rounds: device batches, their mean size, and the share
  // of the wall time the devices spent on batches (above 1 with several devices).
  std::uint64_t batches = 0;
  double tokens_per_batch = 0;
  double device_busy = 0;
};

// Generates the workload's texts, warms up, then times `config.repeat` rounds.
Result<WorkloadResult> run_workload(Engine& engine, TextFactory& factory, const std::string& name,
                                    const BenchConfig& config);

// Nearest-rank percentile (p in [0, 100]) of `values`; 0 for an empty set.
double percentile(std::vector<double> values, double p);

}  // namespace embd::workloads
