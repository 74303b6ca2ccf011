// Benchmark workloads shared by `embd bench` and bench/engine (see workloads.h).
#include "workloads.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <future>
#include <mutex>
#include <thread>
#include <utility>

namespace embd::workloads {
namespace {

using Clock = std::chrono::steady_clock;

// Common English words; those the model's tokenizer keeps as one token are used.
constexpr const char* kCandidateWords[] = {
    "the", "of", "and", "to", "in", "is", "was", "for", "on", "as", "with", "by", "he", "at",
    "from", "his", "an", "were", "are", "which", "this", "also", "be", "has", "or", "had",
    "first", "one", "their", "its", "after", "new", "who", "they", "two", "her", "she", "been",
    "other", "when", "time", "during", "there", "into", "school", "more", "may", "years", "over",
    "only", "year", "most", "would", "world", "city", "some", "where", "between", "later", "three",
    "state", "such", "then", "national", "used", "made", "known", "under", "many", "university",
    "united", "while", "part", "season", "team", "these", "american", "than", "film", "second",
    "born", "south", "became", "states", "war", "through", "being", "including", "both", "before",
    "north", "high", "however", "people", "family", "early", "history", "album", "area", "since",
    "music", "house", "water", "light", "river", "book", "word", "day", "night", "hello", "road",
    "small", "large", "green", "blue", "red", "white", "black", "game", "life", "work", "group",
    "name", "number", "line", "place", "old", "each", "long", "make", "like", "back", "good",
    "great", "public", "church", "under", "around", "against", "army", "power", "last", "best"};

struct RequestStats {
  std::size_t texts = 0;
  std::uint64_t tokens = 0;
  std::vector<double> latencies_ms;
  // Sums over the requests of the engine's own phase times (Embeddings), in seconds.
  double tokenize_s = 0, queue_s = 0, inference_s = 0;
  void add(const RequestStats& o) {
    texts += o.texts;
    tokens += o.tokens;
    latencies_ms.insert(latencies_ms.end(), o.latencies_ms.begin(), o.latencies_ms.end());
    tokenize_s += o.tokenize_s;
    queue_s += o.queue_s;
    inference_s += o.inference_s;
  }
};

// Runs `requests` from `threads` threads (1 = one at a time, in order). Stops at the first error.
// Runs `requests` from `threads` caller threads. Blocking: each thread waits for one request
// before sending the next. Pipelined: each thread submits all of its share at once (futures in
// flight) and then collects them, so every request is queued concurrently; a request's latency
// is measured up to when its future is collected.
Result<RequestStats> run_requests(Engine& engine, const std::vector<std::vector<std::string>>& requests,
                                  const EmbedOptions& options, int threads, bool pipelined = false) {
  std::atomic<std::size_t> next{0};
  std::mutex mu;
  RequestStats total;
  Status first_error;
  auto record = [&](RequestStats& local, std::size_t i, Result<Embeddings> rows, Clock::time_point start) {
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (!rows.ok()) {
      std::lock_guard<std::mutex> lock(mu);
      if (first_error.ok()) first_error = rows.status().with_context("benchmark request " + std::to_string(i));
      next.store(requests.size());
      return false;
    }
    local.texts += rows->rows;
    for (auto n : rows->token_counts) local.tokens += n;
    local.latencies_ms.push_back(ms);
    local.tokenize_s += rows->tokenization_seconds;
    local.queue_s += rows->queue_seconds;
    local.inference_s += rows->inference_seconds;
    return true;
  };
  auto merge = [&](const RequestStats& local) {
    std::lock_guard<std::mutex> lock(mu);
    total.add(local);
  };
  auto blocking = [&] {
    RequestStats local;
    for (;;) {
      std::size_t i = next.fetch_add(1);
      if (i >= requests.size()) break;
      auto start = Clock::now();
      if (!record(local, i, engine.embed(requests[i], options).get(), start)) break;
    }
    merge(local);
  };
  auto submit_all = [&](std::size_t first, std::size_t stride) {
    RequestStats local;
    std::vector<std::pair<std::future<Result<Embeddings>>, Clock::time_point>> in_flight;
    for (std::size_t i = first; i < requests.size(); i += stride) {
      auto start = Clock::now();
      in_flight.emplace_back(engine.embed(requests[i], options), start);
    }
    std::size_t i = first;
    bool ok = true;
    for (auto& [future, start] : in_flight) {
      auto rows = future.get();
      if (ok) ok = record(local, i, std::move(rows), start);
      i += stride;
    }
    merge(local);
  };
  if (threads <= 1) {
    if (pipelined) submit_all(0, 1); else blocking();
  } else {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      if (pipelined) {
        pool.emplace_back(submit_all, static_cast<std::size_t>(t), static_cast<std::size_t>(threads));
      } else {
        pool.emplace_back(blocking);
      }
    }
    for (auto& t : pool) t.join();
  }
  if (!first_error.ok()) return first_error;
  return total;
}

// A workload, ready to run: its requests, how to submit them, and a warm-up subset.
struct Plan {
  std::vector<std::vector<std::string>> requests;
  std::vector<std::vector<std::string>> warmup;
  EmbedOptions options;
  int threads = 1;
  bool pipelined = false;  // every request queued at once (see run_requests)
  std::string mode = "sequential";
};

struct Shape {
  const char* name;
  std::size_t batch;
  std::size_t length;
  std::size_t requests;  // per round
};
constexpr Shape kShapes[] = {{"q16", 1, 16, 100},      {"b32x128", 32, 128, 8}, {"b512x128", 512, 128, 2},
                             {"b8x2048", 8, 2048, 2}, {"b1x8192", 1, 8192, 2}};

Result<Plan> plan_fixed(TextFactory& factory, const Shape& shape) {
  Plan plan;
  std::vector<std::size_t> lengths(shape.batch * shape.requests, shape.length);
  auto texts = factory.make(lengths);
  if (!texts.ok()) return texts.status();
  for (std::size_t r = 0; r < shape.requests; ++r) {
    auto first = texts->begin() + static_cast<std::ptrdiff_t>(r * shape.batch);
    plan.requests.emplace_back(first, first + static_cast<std::ptrdiff_t>(shape.batch));
  }
  std::size_t warm = std::string(shape.name) == "q16" ? 5 : 1;
  plan.warmup.assign(plan.requests.begin(), plan.requests.begin() + static_cast<std::ptrdiff_t>(warm));
  plan.options.priority = std::string(shape.name) == "q16" ? Priority::kQuery : Priority::kInteractive;
  return plan;
}

Result<Plan> plan_mixed(TextFactory& factory, const BenchConfig& config) {
  Plan plan;
  auto texts = factory.make(mixed_lengths(4096, factory.max_length(), config.seed));
  if (!texts.ok()) return texts.status();
  plan.mode = mixed_mode_name(config.mode);
  if (config.mode == MixedMode::kSingleBatch) {
    std::vector<std::string> sorted = std::move(*texts);
    // Characters track tokens for these texts; longest first as a padded framework would sort.
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    plan.warmup.emplace_back(sorted.begin(), sorted.begin() + 64);
    plan.requests.push_back(std::move(sorted));
    return plan;
  }
  for (auto& t : *texts) plan.requests.push_back({std::move(t)});
  plan.warmup.assign(plan.requests.begin(), plan.requests.begin() + 64);
  plan.threads = config.mode == MixedMode::kConcurrent ? config.concurrency : 1;
  // "Submitted concurrently": all 4096 texts are queued at once from the caller threads.
  plan.pipelined = config.mode == MixedMode::kConcurrent;
  return plan;
}

// Keeps batch-priority requests in flight until stopped; counts the tokens they complete.
class Backlog {
 public:
  Backlog(Engine& engine, std::vector<std::string> texts) : engine_(engine), texts_(std::move(texts)) {
    thread_ = std::thread([this] { loop(); });
  }
  ~Backlog() { stop(); }
  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  std::uint64_t tokens() const { return tokens_.load(); }
  const Status& error() const { return error_; }

 private:
  void loop() {
    EmbedOptions options;
    options.priority = Priority::kBatch;
    std::vector<std::future<Result<Embeddings>>> in_flight;
    while (!stop_.load()) {
      while (in_flight.size() < 4) in_flight.push_back(engine_.embed(texts_, options));
      auto rows = in_flight.front().get();
      in_flight.erase(in_flight.begin());
      if (!rows.ok()) {
        error_ = rows.status().with_context("background backlog");
        break;
      }
      for (auto n : rows->token_counts) tokens_ += n;
    }
    for (auto& f : in_flight) (void)f.get();
  }

  Engine& engine_;
  std::vector<std::string> texts_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> tokens_{0};
  Status error_;
  std::thread thread_;
};

void fill_rates(WorkloadResult& r, const RequestStats& stats, double seconds) {
  r.requests = stats.latencies_ms.size();
  r.texts = stats.texts;
  r.tokens = stats.tokens;
  r.seconds = seconds;
  r.tokens_per_s = seconds > 0 ? double(stats.tokens) / seconds : 0;
  r.embeddings_per_s = seconds > 0 ? double(stats.texts) / seconds : 0;
  r.p50_ms = percentile(stats.latencies_ms, 50);
  r.p99_ms = percentile(stats.latencies_ms, 99);
  double sum = 0;
  for (double v : stats.latencies_ms) sum += v;
  const double n = static_cast<double>(std::max<std::size_t>(1, stats.latencies_ms.size()));
  r.mean_ms = sum / n;
  r.mean_tokenize_ms = 1e3 * stats.tokenize_s / n;
  r.mean_queue_ms = 1e3 * stats.queue_s / n;
  r.mean_inference_ms = 1e3 * stats.inference_s / n;
}

const Shape* find_shape(const std::string& name) {
  for (const auto& s : kShapes) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

}  // namespace

const std::vector<std::string>& workload_names() {
  static const std::vector<std::string> kNames = {"q16", "b32x128", "b512x128", "b8x2048", "b1x8192", "mixed4096"};
  return kNames;
}

const char* mixed_mode_name(MixedMode mode) {
  switch (mode) {
    case MixedMode::kConcurrent: return "concurrent";
    case MixedMode::kSequential: return "sequential";
    case MixedMode::kSingleBatch: return "single-batch";
  }
  return "?";
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * double(values.size())));
  return values[std::clamp<std::size_t>(rank, 1, values.size()) - 1];
}

std::vector<std::size_t> mixed_lengths(std::size_t count, std::size_t max_length, std::uint64_t seed) {
  // splitmix64 + Box-Muller instead of <random>'s distributions, whose algorithms differ between
  // standard libraries: bench/pytorch/jinabert_torch.py reproduces these exact lengths.
  std::uint64_t state = seed;
  auto next_unit = [&state] {
    state += 0x9E3779B97F4A7C15ull;
    std::uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * 0x1.0p-53;  // [0, 1)
  };
  // Median e^mu = 120; sigma 0.8 gives a long tail (p99 ~ 770) before clipping.
  const double mu = std::log(120.0), sigma = 0.8, two_pi = 6.283185307179586;
  const std::size_t hi = std::min<std::size_t>(2048, max_length);
  std::vector<std::size_t> lengths(count);
  for (auto& n : lengths) {
    const double u1 = next_unit(), u2 = next_unit();
    const double z = std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(two_pi * u2);
    const double x = std::floor(std::exp(mu + sigma * z) + 0.5);
    n = std::clamp<std::size_t>(x > 1e9 ? hi : static_cast<std::size_t>(x), 8, hi);
  }
  return lengths;
}

TextFactory::TextFactory(const Engine& engine, std::vector<std::string> words, std::size_t specials,
                         std::uint64_t seed)
    : engine_(&engine), words_(std::move(words)), specials_(specials), max_length_(engine.info().max_length),
      rng_(seed) {}

Result<TextFactory> TextFactory::create(const Engine& engine, std::uint64_t seed) {
  auto empty = engine.tokenize({""});
  if (!empty.ok()) return empty.status().with_context("benchmark text factory");
  const std::size_t specials = empty->front().size();
  std::vector<std::string> candidates(std::begin(kCandidateWords), std::end(kCandidateWords));
  auto ids = engine.tokenize(candidates);
  if (!ids.ok()) return ids.status().with_context("benchmark text factory");
  std::vector<std::string> words;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    if ((*ids)[i].size() == specials + 1) words.push_back(candidates[i]);
  }
  if (words.size() < 8) {
    return Status(ErrorCode::kUnsupported, "benchmark text factory: the model's tokenizer keeps only " +
                                               std::to_string(words.size()) + " common English words as one token");
  }
  return TextFactory(engine, std::move(words), specials, seed);
}

std::string TextFactory::random_words(std::size_t n) {
  std::string text;
  std::uniform_int_distribution<std::size_t> pick(0, words_.size() - 1);
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) text += ' ';
    text += words_[pick(rng_)];
  }
  return text;
}

Status TextFactory::fix_length(std::string& text, std::size_t want) {
  for (int attempt = 0; attempt < 16; ++attempt) {
    auto ids = engine_->tokenize({text});
    if (!ids.ok()) return ids.status().with_context("benchmark text factory");
    const std::size_t have = ids->front().size();
    if (have == want) return Status();
    if (have < want) {
      if (!text.empty()) text += ' ';
      text += random_words(want - have);
    } else {
      for (std::size_t drop = have - want; drop > 0 && !text.empty(); --drop) {
        auto cut = text.find_last_of(' ');
        text.erase(cut == std::string::npos ? 0 : cut);
      }
    }
  }
  return Status(ErrorCode::kInternal, "benchmark text factory: cannot build a text of exactly " +
                                          std::to_string(want) + " tokens");
}

Result<std::vector<std::string>> TextFactory::make(const std::vector<std::size_t>& lengths) {
  std::vector<std::string> texts;
  texts.reserve(lengths.size());
  for (std::size_t n : lengths) {
    if (n < specials_) return Status(ErrorCode::kInvalidArgument, "benchmark text of " + std::to_string(n) + " tokens is shorter than the special tokens");
    texts.push_back(random_words(n - specials_));
  }
  auto ids = engine_->tokenize(texts);
  if (!ids.ok()) return ids.status().with_context("benchmark text factory");
  for (std::size_t i = 0; i < texts.size(); ++i) {
    if ((*ids)[i].size() == lengths[i]) continue;
    Status status = fix_length(texts[i], lengths[i]);
    if (!status.ok()) return status;
  }
  return texts;
}

Result<WorkloadResult> run_workload(Engine& engine, TextFactory& factory, const std::string& name,
                                    const BenchConfig& config) {
  WorkloadResult result;
  result.name = name;
  const Shape* shape = find_shape(name);
  if (shape == nullptr && name != "mixed4096") {
    return Status(ErrorCode::kInvalidArgument, "unknown workload '" + name + "'");
  }
  if (shape != nullptr && shape->length > factory.max_length()) {
    result.skipped = true;
    result.note = "longer than the model's maximum length (" + std::to_string(factory.max_length()) + " tokens)";
    return result;
  }
  std::uint64_t seed = config.seed;
  for (char c : name) seed = (seed ^ static_cast<unsigned char>(c)) * 1099511628211ull;  // FNV-1a step
  factory.reseed(seed);
  auto plan = shape != nullptr ? plan_fixed(factory, *shape) : plan_mixed(factory, config);
  if (!plan.ok()) return plan.status();
  result.mode = plan->mode;
  auto warm = run_requests(engine, plan->warmup, plan->options, plan->threads, plan->pipelined);
  if (!warm.ok()) return warm.status().with_context("warm-up of " + name);

  std::unique_ptr<Backlog> backlog;
  if (config.background && name == "q16") {
    auto texts = factory.make(std::vector<std::size_t>(64, std::min<std::size_t>(512, factory.max_length())));
    if (!texts.ok()) return texts.status();
    backlog = std::make_unique<Backlog>(engine, std::move(*texts));
    result.mode = "background";
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the backlog queue fill
  }
  RequestStats all;
  const std::uint64_t backlog_start = backlog ? backlog->tokens() : 0;
  const EngineStats before = engine.stats();
  auto start = Clock::now();
  for (int round = 0; round < std::max(1, config.repeat); ++round) {
    auto stats = run_requests(engine, plan->requests, plan->options, plan->threads, plan->pipelined);
    if (!stats.ok()) return stats.status().with_context(name);
    all.add(*stats);
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  fill_rates(result, all, seconds);
  const EngineStats after = engine.stats();
  result.batches = after.batches - before.batches;
  const double batch_tokens = after.batch_tokens.sum - before.batch_tokens.sum;
  result.tokens_per_batch = result.batches > 0 ? batch_tokens / static_cast<double>(result.batches) : 0;
  const double device = after.inference_time_seconds.sum - before.inference_time_seconds.sum;
  result.device_busy = seconds > 0 ? device / seconds : 0;
  if (backlog) {
    result.backlog_tokens_per_s = double(backlog->tokens() - backlog_start) / seconds;
    backlog->stop();
    if (!backlog->error().ok()) return backlog->error();
  }
  return result;
}

}  // namespace embd::workloads
