// Helpers shared by the CLI subcommands (see cli_common.h).
#include "cli_common.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <utility>

namespace embd::cli {

void add_model_flags(CLI::App& cmd, ModelFlags& flags, bool compute) {
  cmd.add_option("-m,--model", flags.model, "model directory or Hugging Face id (org/name[@rev])")
      ->required();
  cmd.add_flag("--offline", flags.offline, "never touch the network");
  cmd.add_option("--dtype", flags.dtype, "compute dtype")
      ->check(CLI::IsMember({"auto", "f32", "f16", "bf16"}))
      ->capture_default_str();
  cmd.add_option("--device", flags.device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd.add_option("--threads", flags.threads, "CPU threads (0 = all cores)")
      ->check(CLI::NonNegativeNumber);
  if (compute) {
    add_query_lane_flag(cmd, flags);
    add_concurrent_batches_flag(cmd, flags);
    cmd.add_option("--max-length", flags.max_length,
                   "maximum input length in tokens, specials included (0 = the model's)");
    cmd.add_option("--batch-tokens", flags.batch_tokens, "token budget per device batch")
        ->check(CLI::PositiveNumber);
    cmd.add_option("--graph-tokens", flags.graph_tokens,
                   "GPU batches of at most this many tokens replay as CUDA graphs (0 = never)")
        ->capture_default_str();
    cmd.add_option("--fill-delay-us", flags.fill_delay_us,
                   "microseconds a device waits for more requests when less than a batch is queued")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    add_return_wait_flag(cmd, flags);
    add_batch_trace_flag(cmd, flags);
    add_warm_up_flag(cmd, flags);
  }
}

CLI::Option* add_batch_trace_flag(CLI::App& cmd, ModelFlags& flags) {
  return cmd.add_option("--batch-trace", flags.batch_trace,
                        "write every device batch's timeline to this CSV file at exit (diagnostics)");
}

CLI::Option* add_warm_up_flag(CLI::App& cmd, ModelFlags& flags) {
  return cmd.add_flag("--no-warm-up", flags.no_warm_up,
                      "skip the GPU warm-up at load (faster start; the first batch of each size pays "
                      "for loading its kernels)");
}

CLI::Option* add_return_wait_flag(CLI::App& cmd, ModelFlags& flags) {
  return cmd.add_option("--return-wait-us", flags.return_wait_us,
                        "microseconds a device with a small batch queued waits for callers it just "
                        "answered to send their next request (0 = never)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

CLI::Option* add_query_lane_flag(CLI::App& cmd, ModelFlags& flags) {
  return cmd.add_option("--query-lane", flags.query_lane,
                        "a high-priority executor per GPU for query-priority requests")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
}

CLI::Option* add_concurrent_batches_flag(CLI::App& cmd, ModelFlags& flags) {
  return cmd.add_option("--concurrent-batches", flags.concurrent_batches,
                        "two device batches at once per GPU (two CUDA streams; auto = on for GPUs)")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
}

std::optional<bool> on_off_option(const std::string& flag) {
  if (flag == "on") return true;
  if (flag == "off") return false;
  return std::nullopt;
}

LoadOptions load_options(const ModelFlags& flags) {
  LoadOptions options;
  options.dtype = flags.dtype;
  options.device = flags.device;
  options.threads = flags.threads;
  options.query_lane = on_off_option(flags.query_lane);
  options.concurrent_batches = on_off_option(flags.concurrent_batches);
  options.offline = flags.offline;
  options.max_length = flags.max_length;
  if (flags.batch_tokens > 0) options.max_batch_tokens = flags.batch_tokens;
  options.graph_max_tokens = flags.graph_tokens;
  options.batch_fill_delay = std::chrono::microseconds(flags.fill_delay_us);
  options.return_wait = std::chrono::microseconds(flags.return_wait_us);
  options.batch_trace = flags.batch_trace;
  options.warm_up = !flags.no_warm_up;
  return options;
}

Result<std::unique_ptr<Engine>> load_engine(const ModelFlags& flags) {
  auto engine = Engine::load(flags.model, load_options(flags));
  if (!engine.ok() && engine.status().message().find(flags.model) == std::string::npos) {
    return engine.status().with_context("loading model '" + flags.model + "'");  // name the model
  }
  return engine;
}

JsonlReader::JsonlReader(std::string name, std::unique_ptr<std::ifstream> file)
    : name_(std::move(name)), file_(std::move(file)) {
  in_ = file_ ? static_cast<std::istream*>(file_.get()) : &std::cin;
}

Result<std::unique_ptr<JsonlReader>> JsonlReader::open(const std::string& path) {
  if (path.empty() || path == "-") {
    return std::unique_ptr<JsonlReader>(new JsonlReader("<stdin>", nullptr));
  }
  auto file = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (!file->is_open()) return Status(ErrorCode::kNotFound, "cannot open input file '" + path + "'");
  return std::unique_ptr<JsonlReader>(new JsonlReader(path, std::move(file)));
}

namespace {

bool is_blank(const std::string& line) {
  for (char c : line) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  }
  return true;
}

}  // namespace

Result<std::optional<TextRecord>> JsonlReader::next() {
  std::string line;
  while (std::getline(*in_, line)) {
    ++line_;
    if (is_blank(line)) continue;
    auto where = [&] { return name_ + " line " + std::to_string(line_) + ": "; };
    nlohmann::json value;
    try {
      value = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      return invalid(where() + "malformed JSON (" + e.what() + ")");
    }
    if (!value.is_object()) return invalid(where() + "expected a JSON object with a \"text\" field");
    auto it = value.find("text");
    if (it == value.end()) return invalid(where() + "missing \"text\" field");
    if (!it->is_string()) return invalid(where() + "\"text\" must be a string");
    return std::optional<TextRecord>(TextRecord{it->get<std::string>(), line_});
  }
  if (in_->bad()) return Status(ErrorCode::kIoError, "reading " + name_ + " failed after line " + std::to_string(line_));
  return std::optional<TextRecord>();
}

Status JsonlReader::invalid(std::string message) { return {ErrorCode::kInvalidArgument, std::move(message)}; }

void append_float(std::string& out, float value) {
  if (!std::isfinite(value)) {  // JSON has no NaN/Inf
    out += "null";
    return;
  }
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out.append(buffer, end);
}

void append_float_array(std::string& out, std::span<const float> values) {
  out += '[';
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    append_float(out, values[i]);
  }
  out += ']';
}

int print_error(const char* command, const Status& status) {
  std::fprintf(stderr, "embd %s: %s\n", command, status.to_string().c_str());
  return 1;
}

}  // namespace embd::cli
