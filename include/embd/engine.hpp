// embd::Engine: a loaded embedding model behind a thread-safe, batching scheduler.
//
// Thread-safety: every method may be called from any number of threads at once. The engine owns
// one executor thread per device; callers never touch a device. Destroying the engine cancels
// queued work (those requests resolve with kUnavailable) after the batches in flight finish.
// Nothing here throws: failures are returned as Status inside Result.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "embd/options.hpp"
#include "embd/status.hpp"

namespace embd {

// Row-major [rows x dim] float32 embeddings, one row per input text, in input order.
struct Embeddings {
  std::size_t rows = 0;
  std::size_t dim = 0;
  std::vector<float> data;
  std::vector<std::uint32_t> token_counts;  // tokens per input after truncation, specials included
  // Where the request's time went (seconds): tokenising on the caller's thread, waiting in the
  // queue until its first sequence reached a device, and device time of the batches it rode in.
  double tokenization_seconds = 0;
  double queue_seconds = 0;
  double inference_seconds = 0;

  std::span<const float> row(std::size_t i) const { return {data.data() + i * dim, dim}; }
};

// One text's tokens (Engine::tokenize_with_offsets).
struct TokenizedText {
  std::vector<std::int32_t> ids;
  std::vector<std::pair<std::size_t, std::size_t>> offsets;  // per id: bytes [first, second)
};

struct ModelInfo {
  std::string model_id;       // as given to load()
  std::string model_dir;      // resolved local directory
  std::string architecture;   // "jina_bert" | "bert"
  std::string variant;        // e.g. "base", "qk_post_norm" (JinaBERT), "bert", "roberta", "xlm_roberta", "mpnet"
  std::string stored_dtype;   // dtype of the weights on disk
  std::string compute_dtype;  // dtype the model runs in
  std::string pooling;        // "mean" | "cls"
  bool normalize_default = true;
  std::size_t hidden_size = 0;
  std::size_t num_layers = 0;
  std::size_t num_heads = 0;
  std::size_t intermediate_size = 0;
  std::size_t vocab_size = 0;
  std::size_t max_length = 0;  // tokens, specials included
  std::size_t parameters = 0;
  std::vector<std::string> devices;
  std::size_t query_lanes = 0;  // GPUs running a query lane (LoadOptions::query_lane)
  // Batches each device runs at the same time (2 with LoadOptions::concurrent_batches on a GPU).
  std::size_t concurrent_batches = 1;
  std::string tokenizer_summary;
};

// Counters and histograms since load. Histograms: bucket upper bounds and cumulative counts.
struct Histogram {
  std::vector<double> bounds;
  std::vector<std::uint64_t> counts;  // counts[i] = observations <= bounds[i]; last = total
  double sum = 0;
  std::uint64_t count = 0;
};

// The scheduler's counters. They count scheduler requests: a large request queued in two parts
// (LoadOptions::split_large_requests) counts as two.
struct EngineStats {
  std::uint64_t requests_submitted = 0;
  std::uint64_t requests_completed = 0;
  std::uint64_t requests_failed = 0;
  std::uint64_t rejected_overloaded = 0;
  std::uint64_t rejected_invalid = 0;
  std::uint64_t cancelled = 0;
  std::uint64_t deadline_exceeded = 0;
  std::uint64_t tokens_embedded = 0;
  std::uint64_t batches = 0;
  std::uint64_t queued_requests[3] = {0, 0, 0};  // by Priority, now
  std::uint64_t queued_tokens = 0;               // now
  Histogram queue_time_seconds;
  Histogram inference_time_seconds;
  Histogram batch_tokens;
  Histogram batch_requests;
};

// Receives one request's outcome from Engine::embed_async (see there for its thread).
using EmbedCallback = std::function<void(Result<Embeddings>)>;

class Engine {
 public:
  // Loads a model from a local directory or a Hugging Face id ("org/name[@revision]").
  static Result<std::unique_ptr<Engine>> load(const std::string& model,
                                              const LoadOptions& options = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Embeds texts. The future resolves with one row per text, or with the first error that
  // concerns this request (an error in another request never reaches this one). The texts are
  // read (tokenised) before the call returns and not kept.
  std::future<Result<Embeddings>> embed(const std::vector<std::string>& texts,
                                        const EmbedOptions& options = {});
  // Same, from token ids (OpenAI's token-array input). Ids are validated against the vocabulary.
  std::future<Result<Embeddings>> embed_tokens(std::vector<std::vector<std::int32_t>> ids,
                                               const EmbedOptions& options = {});

  // embed() and embed_tokens() with a completion callback instead of a future, so nobody needs
  // a thread to wait. `done` receives the outcome exactly once:
  //  * on the calling thread, before the call returns, when the request is refused at once
  //    (no input, invalid UTF-8 or ids, too long, overloaded, cancelled, past its deadline,
  //    shutting down);
  //  * otherwise on the engine thread that resolves it: a device executor thread when its last
  //    batch is done (or fails); a thread submitting another request, which sweeps out queued
  //    requests that were cancelled or expired; the thread destroying the engine, for requests
  //    still queued then.
  // So `done` must be quick (an executor starts its next batch only after it), must not wait
  // for the engine, must not destroy the engine, and must not throw (an exception is caught
  // and dropped). Its captures are destroyed on the same thread right after it returns. An
  // empty `done` is refused: nothing runs and the request counts as invalid.
  void embed_async(const std::vector<std::string>& texts, const EmbedOptions& options,
                   EmbedCallback done);
  void embed_tokens_async(std::vector<std::vector<std::int32_t>> ids, const EmbedOptions& options,
                          EmbedCallback done);

  // Token ids with specials, as the model sees them. max_length 0 = no truncation.
  Result<std::vector<std::vector<std::int32_t>>> tokenize(
      const std::vector<std::string>& texts, std::size_t max_length = 0,
      TruncationDirection direction = TruncationDirection::kRight) const;
  // Token ids of each text with the bytes [begin, end) of the text each token came from
  // ({0, 0} for the template's specials such as [CLS]), for /tokenize. No truncation.
  Result<std::vector<TokenizedText>> tokenize_with_offsets(const std::vector<std::string>& texts,
                                                           bool add_special_tokens = true) const;
  // Token strings for ids (for /tokenize).
  std::vector<std::string> id_to_tokens(const std::vector<std::int32_t>& ids) const;

  const ModelInfo& info() const;
  EngineStats stats() const;

  class Impl;

 private:
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace embd
