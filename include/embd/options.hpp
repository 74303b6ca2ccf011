// Options for loading a model and for embedding requests.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace embd {

// How a model is loaded.
struct LoadOptions {
  // "auto" (the dtype the weights are stored in, F16 stored weights run as F32 on CPUs without
  // native F16 arithmetic), "f32", "f16" or "bf16".
  std::string dtype = "auto";
  // "cpu", "cuda" (every visible GPU), "cuda:N".
  std::string device = "cpu";
  // Hugging Face revision for model ids ("main" unless the id says `id@rev`).
  std::string revision;
  // Never touch the network (also set by HF_HUB_OFFLINE=1).
  bool offline = false;
  // Threads for CPU kernels and tokenisation; 0 = all available cores.
  int threads = 0;
  // Scheduler budgets per device batch.
  std::size_t max_batch_tokens = 16384;
  std::size_t max_batch_requests = 512;
  // Back-pressure: beyond this many queued tokens, or queued requests, embed() fails fast with
  // kOverloaded.
  std::size_t max_queued_tokens = 1u << 22;
  std::size_t max_queued_requests = 1u << 16;
  // Ageing: each ageing_step a priority class waits raises it one level, so `batch` work is
  // never starved by a stream of queries; zero = strict priority.
  std::chrono::microseconds ageing_step{std::chrono::seconds(1)};
  // Let concurrent arrivals share a batch: a device waits at most this long for more work
  // when less than a batch is queued. 0 (default): it starts at once; arrivals meanwhile still
  // share the next batch, which is taken while the device runs this one (with the kernel's
  // default 50 us timer slack, 50 us here took 16-token queries from 0.14 to 0.25 ms on an H200;
  // executors have set a 1 us slack since).
  std::chrono::microseconds batch_fill_delay{0};
  // Let callers in a loop share a batch: a device with less than 1024 tokens queued waits up to
  // this long (after the oldest queued request arrived) while callers it answered in the last
  // 0.25 ms, in batches of less than 1024 tokens, have not sent their next request yet. Each
  // arrival counts as one of them returning, so a lone caller never waits; N workers each
  // waiting for its answer share one batch instead of trailing each other one small batch at a
  // time (16 threads of single queries: +9% on an H200). 0 = off.
  std::chrono::microseconds return_wait{100};
  // GPU batches of at most this many tokens are recorded once per shape (CUDA graphs) and then
  // replayed as one launch: small batches spend longer launching kernels than running them.
  // 0 = never.
  std::size_t graph_max_tokens = 1024;
  // Override the model's maximum input length (tokens, specials included); 0 = model's own.
  std::size_t max_length = 0;
  // A query lane per GPU: a second executor with its own high-priority CUDA stream (and its own
  // copy of the weights) that runs query-priority work only, while the GPU's first executor
  // runs everything else. A query then never waits in line behind a bulk batch: its kernels are
  // scheduled ahead of the bulk batch's waiting blocks. The first executor still takes queries
  // when it has nothing of its own to run and they have waited 50 us (the lane is busy), so a
  // flood of queries uses both. Unset: on for GPUs (the CPU has no lanes).
  std::optional<bool> query_lane;
  // A GPU's next batch starts while the current one runs its last layer, on a second CUDA stream
  // with activations of its own, instead of queueing behind it: the two batches fill the SMs
  // each other's kernels leave idle (last waves, memory-bound kernels beside GEMMs). Costs a
  // second set of activations (about 20 KB per token of max_batch_tokens for
  // jina-embeddings-v2-small-en in F16). On an H200: mixed4096 +1-2% tokens/s, b512x128 -0.1 ms,
  // and queries under a bulk backlog +0.05-0.08 ms (their lane shares the GPU with two bulk
  // batches instead of one). Unset: on for GPUs (the CPU runs one batch at a time).
  std::optional<bool> concurrent_batches;
  // Queue a large request (several texts, at least 32 KB of text) in two parts: its first
  // quarter of text as soon as that is tokenised, so the device starts on it while the rest is
  // tokenised. Unset: on GPUs only (on a CPU, tokenising and inference share the cores).
  std::optional<bool> split_large_requests;
  // Before the engine answers, run one throwaway batch per batch size class (about four per
  // power of two, up to max_batch_tokens) on each GPU, so that no request pays for loading
  // kernels or planning GEMMs for a size it is the first to need (milliseconds each, with the
  // device idle meanwhile). Adds a fraction of a second to loading. CPUs skip it.
  bool warm_up = true;
  // Diagnostics: when set, every device batch's timeline (host times of take, enqueue, finish
  // and delivery; device begin and end where the device has a clock) is written to this file as
  // CSV when the engine is destroyed. Tracing adds two device timestamps per batch.
  std::string batch_trace;
};

enum class Priority : std::uint8_t { kQuery = 0, kInteractive = 1, kBatch = 2 };
enum class TruncationDirection : std::uint8_t { kRight, kLeft };

// Shared flag a caller can set to drop a pending request. Thread-safe.
class CancellationToken {
 public:
  CancellationToken() : flag_(std::make_shared<std::atomic<bool>>(false)) {}
  void cancel() const { flag_->store(true, std::memory_order_release); }
  bool cancelled() const { return flag_->load(std::memory_order_acquire); }

 private:
  std::shared_ptr<std::atomic<bool>> flag_;
};

struct EmbedOptions {
  Priority priority = Priority::kInteractive;
  // Divide each embedding by its L2 norm (after `dimensions` truncation).
  bool normalize = true;
  // Inputs longer than the maximum length are an error unless truncate is set.
  bool truncate = false;
  TruncationDirection truncation_direction = TruncationDirection::kRight;
  // Keep only the first N dimensions (Matryoshka-style); 0 = all.
  std::size_t dimensions = 0;
  // Work not started by then is dropped with kDeadlineExceeded.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  std::optional<CancellationToken> cancel;
};

}  // namespace embd
