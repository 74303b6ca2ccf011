// embd::Engine: model location, loading, tokenisation on the caller's thread, and the hand-off
// to the scheduler and its device executors.
#include "embd/engine.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <span>
#include <string>
#include <utility>

#include "backends/registry.h"
#include "core/thread_pool.h"
#include "io/model_config.h"
#include "io/model_source.h"
#include "io/safetensors.h"
#include "runtime/executor.h"
#include "runtime/model_runner.h"
#include "runtime/request_parts.h"
#include "runtime/scheduler.h"
#include "tokenizer/tokenizer.h"

namespace embd {

namespace {

// Texts per request below which tokenising on the calling thread beats waking the pool (unless
// they hold tokenizer::kParallelTextBytes of text).
constexpr std::size_t kPoolTokenizeMinTexts = 16;
// Requests with at least this much text (about half a device batch of tokens) are queued in two
// parts when splitting is on; the first part holds this fraction of the text.
constexpr std::size_t kSplitMinBytes = 32 * 1024;
constexpr std::size_t kHeadFraction = 4;

template <typename T>
std::future<T> ready_future(T value) {
  std::promise<T> p;
  p.set_value(std::move(value));
  return p.get_future();
}

}  // namespace

class Engine::Impl {
 public:
  ~Impl() {
    if (scheduler) scheduler->stop();
    executors.clear();  // joins the device threads before the scheduler goes
    trace.reset();      // every batch is in it now
  }

  // A request ready for the scheduler: token ids per input and the time tokenising took.
  struct Prepared {
    std::vector<std::vector<std::int32_t>> sequences;
    double tokenization_seconds = 0;
  };

  Status load(const std::string& model, const LoadOptions& options);
  // Tokenise texts / check and truncate ids. A refusal is counted as an invalid request; its
  // message names the input by its index in the whole request (`first` is texts[0]'s).
  Result<Prepared> prepare_texts(std::span<const std::string> texts, const EmbedOptions& options,
                                 std::size_t first = 0);
  Result<Prepared> prepare_ids(std::vector<std::vector<std::int32_t>> ids,
                               const EmbedOptions& options);
  // The outcome of a refusal or a submission, through a future or a callback.
  std::future<Result<Embeddings>> submit(Result<Prepared> prepared, const EmbedOptions& options);
  void submit(Result<Prepared> prepared, const EmbedOptions& options, EmbedCallback done,
              runtime::RowTarget target = {});
  // An empty callback could never hear about its request: it is refused (and counted) up front.
  bool refuse_empty(const EmbedCallback& done);
  Result<std::vector<std::vector<std::int32_t>>> encode(std::span<const std::string> texts,
                                                       std::size_t max_length,
                                                       TruncationDirection direction,
                                                       bool length_is_error,
                                                       std::size_t first = 0) const;
  // The pool to tokenise `texts` on: none for a few short texts, which the calling thread does
  // faster than a wake-up of the pool (and which would otherwise queue behind other callers'
  // small jobs on it).
  ThreadPool* pool_for(std::span<const std::string> texts) const;
  // How many texts go in a large request's first part; 0: queue it whole.
  std::size_t head_part(const std::vector<std::string>& texts) const;
  // Texts tokenised and queued in two parts (head_part), answered as one through `done`.
  void submit_in_parts(const std::vector<std::string>& texts, std::size_t head,
                       const EmbedOptions& options, EmbedCallback done);

  ModelInfo info;
  io::ModelConfig config;
  std::size_t max_length = 0;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
  std::unique_ptr<ThreadPool> tokenize_pool;
  std::unique_ptr<runtime::Scheduler> scheduler;
  std::vector<std::unique_ptr<runtime::Executor>> executors;
  std::shared_ptr<runtime::BatchTrace> trace;  // LoadOptions::batch_trace; written after the executors stop
  bool split_large_requests = false;

 private:
  Status start_executors(std::shared_ptr<const io::WeightSet> weights, DType dtype,
                         const LoadOptions& options);
  void fill_info(const std::string& model, const std::string& dir, const io::WeightSet& weights);
};

Status Engine::Impl::load(const std::string& model, const LoadOptions& options) {
  io::HubOptions hub;
  hub.revision = options.revision;
  hub.offline = options.offline;
  EMBD_ASSIGN_OR_RETURN(auto dir, io::resolve_model(model, hub));
  EMBD_ASSIGN_OR_RETURN(config, io::load_model_config(dir));
  EMBD_ASSIGN_OR_RETURN(tokenizer, tokenizer::Tokenizer::load(dir));
  if (static_cast<std::int64_t>(tokenizer->vocab_size()) > config.vocab_size) {
    return invalid_model("tokenizer has " + std::to_string(tokenizer->vocab_size()) +
                         " tokens but the model's vocab_size is " + std::to_string(config.vocab_size));
  }
  EMBD_ASSIGN_OR_RETURN(std::shared_ptr<const io::WeightSet> weights, io::WeightSet::open_dir(dir));
  max_length = static_cast<std::size_t>(config.max_length);
  if (options.max_length > 0) {
    if (options.max_length > max_length) {
      return invalid_argument("max_length " + std::to_string(options.max_length) +
                              " exceeds the model's maximum of " + std::to_string(max_length));
    }
    max_length = options.max_length;
  }
  DType dtype = weights->stored_dtype();
  if (options.dtype != "auto") {
    EMBD_ASSIGN_OR_RETURN(dtype, parse_dtype(options.dtype));
  }
  tokenize_pool = std::make_unique<ThreadPool>(options.threads);
  EMBD_TRY(start_executors(weights, dtype, options));
  fill_info(model, dir.string(), *weights);
  return ok_status();
}

Status Engine::Impl::start_executors(std::shared_ptr<const io::WeightSet> weights, DType dtype,
                                     const LoadOptions& options) {
  backend::BackendOptions bo;
  bo.threads = options.threads;
  // A stream per pipeline slot lets the runner's batches run at once (ModelRunner); a CPU ignores it.
  bo.gpu_streams = options.concurrent_batches.value_or(true) ? runtime::ModelRunner::kSlots : 1;
  EMBD_ASSIGN_OR_RETURN(auto backends, backend::create_backends(options.device, bo));
  if (options.dtype == "auto") dtype = backends.front()->preferred_dtype(dtype);
  const bool async = backends.front()->asynchronous();
  split_large_requests = options.split_large_requests.value_or(async);
  info.compute_dtype = std::string(dtype_name(dtype));
  for (auto& be : backends) info.devices.push_back(be->name());
  info.concurrent_batches = runtime::ModelRunner::batches_at_once(*backends.front());
  if (!options.batch_trace.empty()) trace = std::make_shared<runtime::BatchTrace>(options.batch_trace);
  scheduler = std::make_unique<runtime::Scheduler>(runtime::SchedulerOptions::from(options),
                                                   static_cast<std::size_t>(config.hidden_size));
  const auto start = [&](std::unique_ptr<backend::Backend> be, runtime::ClassMask classes) {
    // The factory runs on the executor's own thread, which then owns the backend for good.
    auto shared_be = std::make_shared<std::unique_ptr<backend::Backend>>(std::move(be));
    const auto graph_tokens = static_cast<std::int64_t>(options.graph_max_tokens);
    const bool warm_up = options.warm_up && (*shared_be)->asynchronous();
    const auto warm_tokens = static_cast<std::int64_t>(options.max_batch_tokens);
    const auto warm_seqlen = static_cast<std::int64_t>(max_length);
    auto factory = [shared_be, weights, cfg = config, dtype, graph_tokens, warm_up, warm_tokens,
                    warm_seqlen]() -> Result<std::unique_ptr<runtime::BatchRunner>> {
      EMBD_ASSIGN_OR_RETURN(auto runner, runtime::ModelRunner::create(std::move(*shared_be), cfg, *weights,
                                                                      dtype, graph_tokens));
      if (warm_up) {
        if (Status s = runner->warm_up(warm_tokens, warm_seqlen); !s.ok()) {
          return s.with_context("warming up on " + runner->device_name());
        }
      }
      return std::unique_ptr<runtime::BatchRunner>(std::move(runner));
    };
    // A query lane shares its GPU's name; its executor (thread, errors, trace) is told apart.
    const std::string name = (*shared_be)->name() + (classes == runtime::kAllClasses ? "" : "/lane");
    return std::make_unique<runtime::Executor>(*scheduler, std::move(factory), name, classes, trace);
  };
  for (auto& be : backends) executors.push_back(start(std::move(be), runtime::kAllClasses));
  for (auto& e : executors) EMBD_TRY(e->wait_ready());
  if (!options.query_lane.value_or(true) || !async) return ok_status();

  // Query lanes, one per GPU in the same order. Once a lane runs, its GPU's first executor hands
  // queries over to it (taking them only while idle and the lane is busy). Unasked for (query_lane unset), a lane that does not fit in device memory
  // beside the first executor's weights is left out, and that GPU runs queries as before.
  EMBD_ASSIGN_OR_RETURN(auto lanes, backend::create_query_lanes(options.device));
  const runtime::ClassMask queries = runtime::class_bit(Priority::kQuery);
  std::vector<std::unique_ptr<runtime::Executor>> started;  // load their weights side by side
  for (auto& be : lanes) started.push_back(start(std::move(be), queries));
  for (std::size_t i = 0; i < started.size() && i < executors.size(); ++i) {
    auto& lane = started[i];
    if (Status ready = lane->wait_ready(); !ready.ok()) {
      if (options.query_lane.has_value() || ready.code() != ErrorCode::kOutOfMemory) {
        return ready.with_context("query lane");
      }
      continue;  // the lane's thread has ended; `started` destroys its executor on return
    }
    executors[i]->hand_over(queries);
    executors.push_back(std::move(lane));
    ++info.query_lanes;
  }
  return ok_status();
}

void Engine::Impl::fill_info(const std::string& model, const std::string& dir,
                             const io::WeightSet& weights) {
  info.model_id = model;
  info.model_dir = dir;
  info.architecture = std::string(io::architecture_name(config.architecture));
  if (config.architecture == io::Architecture::kJinaBert) {
    info.variant = std::string(io::variant_name(config.variant));
  } else {
    // bert, roberta, mpnet, distilbert; xlm-roberta in the snake case of the other names.
    info.variant = config.model_type == "xlm-roberta" ? "xlm_roberta" : config.model_type;
  }
  info.stored_dtype = std::string(dtype_name(weights.stored_dtype()));
  info.pooling = std::string(io::pooling_name(config.pooling));
  info.normalize_default = true;
  info.hidden_size = static_cast<std::size_t>(config.hidden_size);
  info.num_layers = static_cast<std::size_t>(config.num_hidden_layers);
  info.num_heads = static_cast<std::size_t>(config.num_attention_heads);
  info.intermediate_size = static_cast<std::size_t>(config.intermediate_size);
  info.vocab_size = static_cast<std::size_t>(config.vocab_size);
  info.max_length = max_length;
  info.parameters = static_cast<std::size_t>(weights.parameter_count());
  info.tokenizer_summary = tokenizer->summary();
}

Result<std::vector<std::vector<std::int32_t>>> Engine::Impl::encode(
    std::span<const std::string> texts, std::size_t limit, TruncationDirection direction,
    bool length_is_error, std::size_t first) const {
  tokenizer::EncodeOptions eo;
  eo.max_length = limit;
  eo.direction = direction;
  auto encodings = tokenizer->encode_batch(texts, eo, pool_for(texts));
  std::vector<std::vector<std::int32_t>> ids(texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const auto input = [&] { return "input " + std::to_string(first + i); };
    if (!encodings[i].ok()) return encodings[i].status().with_context(input());
    if (length_is_error && encodings[i]->ids.size() > max_length) {
      return Status(ErrorCode::kInputTooLong,
                    input() + " has " + std::to_string(encodings[i]->ids.size()) +
                        " tokens, more than the model's maximum of " + std::to_string(max_length) +
                        " (enable truncation to cut it)");
    }
    ids[i] = std::move(encodings[i]->ids);
  }
  return ids;
}

ThreadPool* Engine::Impl::pool_for(std::span<const std::string> texts) const {
  const bool worth_it = texts.size() >= kPoolTokenizeMinTexts ||
                        runtime::text_bytes(texts) >= tokenizer::kParallelTextBytes;
  return worth_it ? tokenize_pool.get() : nullptr;
}

Result<Engine::Impl::Prepared> Engine::Impl::prepare_texts(std::span<const std::string> texts,
                                                           const EmbedOptions& options,
                                                           std::size_t first) {
  const auto reject = [&](Status s) {
    scheduler->stats().record_rejected_invalid();
    return s;
  };
  if (texts.empty()) return reject(invalid_argument("no input texts"));
  const auto start = std::chrono::steady_clock::now();
  auto ids = encode(texts, options.truncate ? max_length : 0, options.truncation_direction,
                    !options.truncate, first);
  if (!ids.ok()) return reject(ids.status());
  return Prepared{std::move(ids).value(),
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
}

Result<Engine::Impl::Prepared> Engine::Impl::prepare_ids(std::vector<std::vector<std::int32_t>> ids,
                                                         const EmbedOptions& options) {
  const auto reject = [&](Status s) {
    scheduler->stats().record_rejected_invalid();
    return s;
  };
  if (ids.empty()) return reject(invalid_argument("no inputs"));
  const auto vocab = config.vocab_size;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    auto& seq = ids[i];
    if (seq.empty()) return reject(invalid_argument("input " + std::to_string(i) + " has no tokens"));
    for (std::size_t k = 0; k < seq.size(); ++k) {
      if (seq[k] < 0 || seq[k] >= vocab) {
        return reject(invalid_argument("input " + std::to_string(i) + " token " + std::to_string(k) +
                                       ": id " + std::to_string(seq[k]) + " is outside the vocabulary [0, " +
                                       std::to_string(vocab) + ")"));
      }
    }
    if (seq.size() > max_length) {
      if (!options.truncate) {
        return reject(Status(ErrorCode::kInputTooLong,
                             "input " + std::to_string(i) + " has " + std::to_string(seq.size()) +
                                 " tokens, more than the model's maximum of " +
                                 std::to_string(max_length)));
      }
      if (options.truncation_direction == TruncationDirection::kLeft) {
        seq.erase(seq.begin(), seq.end() - static_cast<std::ptrdiff_t>(max_length));
      } else {
        seq.resize(max_length);
      }
    }
  }
  return Prepared{std::move(ids), 0};
}

std::future<Result<Embeddings>> Engine::Impl::submit(Result<Prepared> prepared,
                                                     const EmbedOptions& options) {
  if (!prepared.ok()) return ready_future<Result<Embeddings>>(prepared.status());
  Prepared& p = prepared.value();
  return scheduler->submit(std::move(p.sequences), options, p.tokenization_seconds);
}

void Engine::Impl::submit(Result<Prepared> prepared, const EmbedOptions& options,
                          EmbedCallback done, runtime::RowTarget target) {
  if (!prepared.ok()) return runtime::invoke_callback(done, prepared.status());
  Prepared& p = prepared.value();
  scheduler->submit(std::move(p.sequences), options, std::move(done), p.tokenization_seconds,
                    std::move(target));
}

std::size_t Engine::Impl::head_part(const std::vector<std::string>& texts) const {
  return split_large_requests ? runtime::head_part_size(texts, kSplitMinBytes, kHeadFraction) : 0;
}

void Engine::Impl::submit_in_parts(const std::vector<std::string>& texts, std::size_t head,
                                   const EmbedOptions& options, EmbedCallback done) {
  auto rows = std::make_shared<runtime::SharedRows>(texts.size());
  auto join = std::make_shared<runtime::PartsJoin>(2, std::move(done), rows);
  const std::span<const std::string> all(texts);
  const std::array<std::span<const std::string>, 2> parts{all.first(head), all.subspan(head)};
  for (std::size_t k = 0; k < parts.size(); ++k) {
    if (join->resolved()) return;  // an earlier part was refused: the rest need not be queued
    const std::size_t first = k == 0 ? 0 : head;
    auto prepared = prepare_texts(parts[k], options, first);
    if (!prepared.ok()) return join->deliver(k, prepared.status());
    submit(std::move(prepared), options,
           [join, k](Result<Embeddings> outcome) { join->deliver(k, std::move(outcome)); },
           runtime::RowTarget{rows, first});
  }
  // Every part is queued: size the output here, while the device runs the first part, and not on
  // the executor thread (unless its first rows land sooner).
  rows->reserve(scheduler->output_dim(options));
}

bool Engine::Impl::refuse_empty(const EmbedCallback& done) {
  if (done) return false;
  scheduler->stats().record_rejected_invalid();
  return true;
}

// ---- Engine ----

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

Result<std::unique_ptr<Engine>> Engine::load(const std::string& model, const LoadOptions& options) {
  auto impl = std::make_unique<Impl>();
  Status s = impl->load(model, options);
  if (!s.ok()) return s.with_context("loading model '" + model + "'");
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

std::future<Result<Embeddings>> Engine::embed(const std::vector<std::string>& texts,
                                              const EmbedOptions& options) {
  if (const std::size_t head = impl_->head_part(texts); head > 0) {
    auto promise = std::make_shared<std::promise<Result<Embeddings>>>();
    auto future = promise->get_future();
    impl_->submit_in_parts(texts, head, options,
                           [promise](Result<Embeddings> outcome) { promise->set_value(std::move(outcome)); });
    return future;
  }
  return impl_->submit(impl_->prepare_texts(texts, options), options);
}

std::future<Result<Embeddings>> Engine::embed_tokens(std::vector<std::vector<std::int32_t>> ids,
                                                     const EmbedOptions& options) {
  return impl_->submit(impl_->prepare_ids(std::move(ids), options), options);
}

void Engine::embed_async(const std::vector<std::string>& texts, const EmbedOptions& options,
                         EmbedCallback done) {
  if (impl_->refuse_empty(done)) return;
  if (const std::size_t head = impl_->head_part(texts); head > 0) {
    return impl_->submit_in_parts(texts, head, options, std::move(done));
  }
  impl_->submit(impl_->prepare_texts(texts, options), options, std::move(done));
}

void Engine::embed_tokens_async(std::vector<std::vector<std::int32_t>> ids,
                                const EmbedOptions& options, EmbedCallback done) {
  if (impl_->refuse_empty(done)) return;
  impl_->submit(impl_->prepare_ids(std::move(ids), options), options, std::move(done));
}

Result<std::vector<std::vector<std::int32_t>>> Engine::tokenize(
    const std::vector<std::string>& texts, std::size_t max_length,
    TruncationDirection direction) const {
  return impl_->encode(texts, max_length, direction, false);
}

Result<std::vector<TokenizedText>> Engine::tokenize_with_offsets(const std::vector<std::string>& texts,
                                                                 bool add_special_tokens) const {
  tokenizer::EncodeOptions eo;
  eo.add_special_tokens = add_special_tokens;
  eo.offsets = true;
  auto encodings = impl_->tokenizer->encode_batch(texts, eo, impl_->pool_for(texts));
  std::vector<TokenizedText> out(texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    if (!encodings[i].ok()) return encodings[i].status().with_context("input " + std::to_string(i));
    out[i].ids = std::move(encodings[i]->ids);
    for (const auto& o : encodings[i]->offsets) out[i].offsets.emplace_back(o.begin, o.end);
  }
  return out;
}

std::vector<std::string> Engine::id_to_tokens(const std::vector<std::int32_t>& ids) const {
  std::vector<std::string> out;
  out.reserve(ids.size());
  for (auto id : ids) out.push_back(impl_->tokenizer->id_to_token(id));
  return out;
}

const ModelInfo& Engine::info() const { return impl_->info; }

EngineStats Engine::stats() const { return impl_->scheduler->stats().snapshot(); }

}  // namespace embd
