// Helpers shared by the CLI subcommands: model flags and engine loading, JSON Lines input with
// line numbers, round-trip float formatting, and error reporting on stderr.
//
// Ownership: JsonlReader owns its file stream (or borrows std::cin). Not thread-safe: each object
// belongs to one thread. Errors are returned as embd::Status naming the input file and line; the
// commands print them with print_error() and exit non-zero.
#pragma once

#include <CLI/CLI.hpp>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <istream>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "embd/engine.hpp"
#include "embd/options.hpp"
#include "embd/status.hpp"

namespace embd::cli {

// Flags that pick and load a model. `compute` adds the flags that only matter when embedding.
struct ModelFlags {
  std::string model;
  std::string dtype = "auto";
  std::string device = "cpu";
  int threads = 0;
  std::string query_lane = "auto";  // auto (on for GPUs), on, off: LoadOptions::query_lane
  std::string concurrent_batches = "auto";  // auto, on, off: LoadOptions::concurrent_batches
  std::size_t max_length = 0;
  std::size_t batch_tokens = 0;  // 0 = engine default
  std::size_t graph_tokens = LoadOptions{}.graph_max_tokens;
  std::int64_t fill_delay_us = LoadOptions{}.batch_fill_delay.count();
  std::int64_t return_wait_us = LoadOptions{}.return_wait.count();
  bool offline = false;
  std::string batch_trace;  // LoadOptions::batch_trace
  bool no_warm_up = false;  // !LoadOptions::warm_up
};
void add_model_flags(CLI::App& cmd, ModelFlags& flags, bool compute);

// Adds --batch-trace (LoadOptions::batch_trace) to a command.
CLI::Option* add_batch_trace_flag(CLI::App& cmd, ModelFlags& flags);
// Adds --no-warm-up (LoadOptions::warm_up) to a command.
CLI::Option* add_warm_up_flag(CLI::App& cmd, ModelFlags& flags);
// Adds --return-wait-us (LoadOptions::return_wait) to a command.
CLI::Option* add_return_wait_flag(CLI::App& cmd, ModelFlags& flags);
// Adds --query-lane (LoadOptions::query_lane) to a command.
CLI::Option* add_query_lane_flag(CLI::App& cmd, ModelFlags& flags);
// Adds --concurrent-batches (LoadOptions::concurrent_batches) to a command.
CLI::Option* add_concurrent_batches_flag(CLI::App& cmd, ModelFlags& flags);
// The value of an auto|on|off flag: unset for auto.
std::optional<bool> on_off_option(const std::string& flag);

// The LoadOptions the model flags ask for (the engine's defaults elsewhere).
LoadOptions load_options(const ModelFlags& flags);
// Loads the engine; the error names the model path or id.
Result<std::unique_ptr<Engine>> load_engine(const ModelFlags& flags);

// One input record: its text and the 1-based physical line it came from.
struct TextRecord {
  std::string text;
  std::size_t line = 0;
};

// Reads JSON Lines objects with a string "text" field. Blank lines are skipped.
class JsonlReader {
 public:
  // path empty or "-" = standard input.
  static Result<std::unique_ptr<JsonlReader>> open(const std::string& path);
  // The next record, std::nullopt at the end, or an error naming the file and line.
  Result<std::optional<TextRecord>> next();
  const std::string& name() const { return name_; }

 private:
  JsonlReader(std::string name, std::unique_ptr<std::ifstream> file);
  static Status invalid(std::string message);
  std::string name_;
  std::unique_ptr<std::ifstream> file_;
  std::istream* in_;
  std::size_t line_ = 0;
};

// Appends the shortest decimal form of `value` that reads back to the same float.
void append_float(std::string& out, float value);
// Appends `[v0,v1,...]` with append_float.
void append_float_array(std::string& out, std::span<const float> values);

// Prints "embd <command>: <status>" on stderr and returns the exit code for it (1).
int print_error(const char* command, const Status& status);

}  // namespace embd::cli
