// `embd embed`: JSON Lines {"text": ...} in (a file or standard input), embeddings out in input
// order as JSON Lines {"index", "embedding", "tokens"} or a float32 .npy matrix.
//
// Input is streamed: texts are cut into small requests and several are kept in flight at once so
// the engine's scheduler can merge them into full batches; results are written as the oldest
// request completes. A progress line goes to stderr when it is a terminal; a throughput summary
// always goes to stderr at the end.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli_common.h"
#include "commands.h"
#include "embed_output.h"
#include "embd/engine.hpp"

namespace embd::cli {
namespace {

using Clock = std::chrono::steady_clock;

// A request: up to kChunkTexts texts or kChunkChars characters (about 16k tokens), whichever
// comes first; at most kMaxInFlightChars characters queued, far below the engine's token bound.
constexpr std::size_t kChunkTexts = 64;
constexpr std::size_t kChunkChars = 64 * 1024;
constexpr std::size_t kMaxInFlight = 32;
constexpr std::size_t kMaxInFlightChars = 2 * 1024 * 1024;

struct EmbedFlags {
  ModelFlags model;
  std::string input;
  std::string output;
  bool no_normalize = false;
  bool truncate = false;
};

struct Pending {
  std::vector<std::string> texts;
  std::vector<std::size_t> lines;
  std::size_t first_index = 0;
  std::size_t chars = 0;
  std::future<Result<Embeddings>> result;
};

class Progress {
 public:
  Progress(bool enabled, std::size_t total) : enabled_(enabled), total_(total), start_(Clock::now()) {}

  void update(std::size_t texts, std::uint64_t tokens, bool force) {
    if (!enabled_) return;
    auto now = Clock::now();
    if (!force && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    double seconds = std::chrono::duration<double>(now - start_).count();
    double rate = seconds > 0 ? static_cast<double>(tokens) / seconds : 0.0;
    if (total_ > 0) {
      constexpr int kWidth = 30;
      int filled = static_cast<int>(kWidth * std::min<double>(1.0, double(texts) / double(total_)));
      std::string bar(filled, '=');
      bar.append(kWidth - filled, ' ');
      std::fprintf(stderr, "\r[%s] %3d%% %zu/%zu texts, %.0f tokens/s ", bar.c_str(),
                   static_cast<int>(100.0 * texts / total_), texts, total_, rate);
    } else {
      std::fprintf(stderr, "\r%zu texts, %.0f tokens/s ", texts, rate);
    }
    std::fflush(stderr);
  }
  void done() {
    if (enabled_) std::fprintf(stderr, "\n");
  }

 private:
  bool enabled_;
  std::size_t total_;
  Clock::time_point start_;
  Clock::time_point last_{};
};

// Counts non-blank lines of a regular file, for the progress bar's total (0 when unknown).
std::size_t count_records(const std::string& path) {
  if (path.empty() || path == "-") return 0;
  std::ifstream in(path, std::ios::binary);
  std::size_t count = 0;
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") != std::string::npos) ++count;
  }
  return count;
}

class EmbedRun {
 public:
  EmbedRun(Engine& engine, const EmbedFlags& flags, EmbedOutput& output, std::string input_name)
      : engine_(engine), output_(output), input_name_(std::move(input_name)) {
    options_.priority = Priority::kBatch;
    options_.normalize = !flags.no_normalize;
    options_.truncate = flags.truncate;
  }

  void submit(Pending pending) {
    in_flight_chars_ += pending.chars;
    pending.result = engine_.embed(pending.texts, options_);
    queue_.push_back(std::move(pending));
  }
  bool must_drain() const { return queue_.size() >= kMaxInFlight || in_flight_chars_ >= kMaxInFlightChars; }
  bool idle() const { return queue_.empty(); }

  // Waits for the oldest request and writes its rows.
  Status complete_front() {
    Pending& front = queue_.front();
    Result<Embeddings> rows = front.result.get();
    // Back-pressure from other users of a shared engine: the older requests are done, retry.
    for (int attempt = 0; !rows.ok() && rows.status().code() == ErrorCode::kOverloaded && attempt < 100; ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10 * (attempt + 1)));
      rows = engine_.embed(front.texts, options_).get();
    }
    if (!rows.ok()) return locate_error(front, rows.status());
    Status status = output_.write(*rows, front.first_index);
    if (!status.ok()) return status;
    texts_ += rows->rows;
    for (auto n : rows->token_counts) tokens_ += n;
    in_flight_chars_ -= front.chars;
    queue_.pop_front();
    return Status();
  }

  std::size_t texts() const { return texts_; }
  std::uint64_t tokens() const { return tokens_; }

 private:
  // Names the input line at fault: a failing request is retried one text at a time.
  Status locate_error(const Pending& p, const Status& status) {
    if (p.texts.size() > 1 && (status.code() == ErrorCode::kInvalidArgument ||
                               status.code() == ErrorCode::kInputTooLong)) {
      for (std::size_t i = 0; i < p.texts.size(); ++i) {
        auto one = engine_.embed({p.texts[i]}, options_).get();
        if (!one.ok()) return one.status().with_context(input_name_ + " line " + std::to_string(p.lines[i]));
      }
    }
    std::string where = p.lines.size() == 1 ? " line " + std::to_string(p.lines.front())
                                            : " lines " + std::to_string(p.lines.front()) + "-" +
                                                  std::to_string(p.lines.back());
    return status.with_context(input_name_ + where);
  }

  Engine& engine_;
  EmbedOutput& output_;
  std::string input_name_;
  EmbedOptions options_;
  std::deque<Pending> queue_;
  std::size_t in_flight_chars_ = 0;
  std::size_t texts_ = 0;
  std::uint64_t tokens_ = 0;
};

Status embed_stream(JsonlReader& reader, EmbedRun& run, Progress& progress) {
  Pending chunk;
  std::size_t next_index = 0;
  for (;;) {
    auto next = reader.next();
    if (!next.ok()) return next.status();
    std::optional<TextRecord> record = std::move(next).value();
    const bool done = !record.has_value();
    if (!done) {
      chunk.chars += record->text.size();
      chunk.texts.push_back(std::move(record->text));
      chunk.lines.push_back(record->line);
    }
    const bool full = chunk.texts.size() >= kChunkTexts || chunk.chars >= kChunkChars;
    if (full || (done && !chunk.texts.empty())) {
      chunk.first_index = next_index;
      next_index += chunk.texts.size();
      run.submit(std::move(chunk));
      chunk = Pending();
    }
    while (!run.idle() && (run.must_drain() || done)) {
      Status status = run.complete_front();
      if (!status.ok()) return status;
      progress.update(run.texts(), run.tokens(), false);
    }
    if (done) break;
  }
  return Status();
}

int run_embed(const EmbedFlags& flags) {
  auto reader = JsonlReader::open(flags.input);
  if (!reader.ok()) return print_error("embed", reader.status());
  auto engine = load_engine(flags.model);
  if (!engine.ok()) return print_error("embed", engine.status());
  auto output = open_embed_output(flags.output);
  if (!output.ok()) return print_error("embed", output.status());

  const bool tty = isatty(STDERR_FILENO) != 0;
  Progress progress(tty, tty ? count_records(flags.input) : 0);
  EmbedRun run(**engine, flags, **output, (*reader)->name());
  auto start = Clock::now();
  Status status = embed_stream(**reader, run, progress);
  if (status.ok()) status = (*output)->finish((*engine)->info().hidden_size);
  progress.update(run.texts(), run.tokens(), true);
  progress.done();
  if (!status.ok()) return print_error("embed", status);
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::fprintf(stderr, "embd embed: %zu texts, %llu tokens in %.3f s: %.1f tokens/s, %.1f texts/s\n",
               run.texts(), static_cast<unsigned long long>(run.tokens()), seconds,
               seconds > 0 ? double(run.tokens()) / seconds : 0.0,
               seconds > 0 ? double(run.texts()) / seconds : 0.0);
  return 0;
}

}  // namespace

CommandRun add_embed_command(CLI::App& root) {
  auto* cmd = root.add_subcommand("embed", "embed JSON Lines {\"text\": ...} into JSON Lines or .npy");
  auto flags = std::make_shared<EmbedFlags>();
  add_model_flags(*cmd, flags->model, /*compute=*/true);
  cmd->add_option("-i,--input", flags->input, "JSON Lines input file (default: standard input)");
  cmd->add_option("-o,--output", flags->output,
                  "output file: *.npy = float32 matrix, else JSON Lines (default: standard output)");
  cmd->add_flag("--no-normalize", flags->no_normalize, "keep raw pooled vectors (no L2 normalisation)");
  cmd->add_flag("--truncate", flags->truncate, "truncate inputs longer than the maximum length");
  return [flags]() { return run_embed(*flags); };
}

}  // namespace embd::cli
