// `embd bench`: times the DESIGN.md workloads (q16, b32x128, b512x128, b8x2048, b1x8192,
// mixed4096) on a model and prints tokens/s, embeddings/s and p50/p99 latency per workload, as a
// table or (--json) as one JSON object shaped like bench/pytorch/jinabert_torch.py's output.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cli_common.h"
#include "commands.h"
#include "embd/engine.hpp"
#include "embd/version.hpp"
#include "workloads.h"

namespace embd::cli {
namespace {

namespace wl = embd::workloads;

struct BenchFlags {
  ModelFlags model;
  std::string workload = "all";
  std::string mode = "concurrent";
  int repeat = 1;
  bool background = false;
  bool json = false;
  std::uint64_t seed = wl::BenchConfig{}.seed;
};

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

std::string command_line(const BenchFlags& f) {
  std::string cmd = "embd bench --model " + f.model.model + " --dtype " + f.model.dtype + " --device " +
                    f.model.device + " --workload " + f.workload + " --repeat " + std::to_string(f.repeat) +
                    " --mode " + f.mode;
  if (f.model.threads > 0) cmd += " --threads " + std::to_string(f.model.threads);
  cmd += " --query-lane " + f.model.query_lane;
  cmd += " --concurrent-batches " + f.model.concurrent_batches;
  if (f.model.batch_tokens > 0) cmd += " --batch-tokens " + std::to_string(f.model.batch_tokens);
  cmd += " --graph-tokens " + std::to_string(f.model.graph_tokens);
  cmd += " --fill-delay-us " + std::to_string(f.model.fill_delay_us);
  cmd += " --return-wait-us " + std::to_string(f.model.return_wait_us);
  if (f.model.no_warm_up) cmd += " --no-warm-up";
  if (!f.model.batch_trace.empty()) cmd += " --batch-trace " + f.model.batch_trace;
  if (f.background) cmd += " --background";
  return cmd;
}

nlohmann::ordered_json result_json(const wl::WorkloadResult& r) {
  nlohmann::ordered_json j;
  j["name"] = r.name;
  j["mode"] = r.mode;
  j["skipped"] = r.skipped;
  if (!r.note.empty()) j["note"] = r.note;
  if (r.skipped) return j;
  j["requests"] = r.requests;
  j["texts"] = r.texts;
  j["tokens"] = r.tokens;
  j["seconds"] = r.seconds;
  j["tokens_per_s"] = r.tokens_per_s;
  j["embeddings_per_s"] = r.embeddings_per_s;
  j["p50_ms"] = r.p50_ms;
  j["p99_ms"] = r.p99_ms;
  j["mean_ms"] = r.mean_ms;
  j["mean_tokenize_ms"] = r.mean_tokenize_ms;
  j["mean_queue_ms"] = r.mean_queue_ms;
  j["mean_inference_ms"] = r.mean_inference_ms;
  if (r.mode == "background") j["backlog_tokens_per_s"] = r.backlog_tokens_per_s;
  j["batches"] = r.batches;
  j["tokens_per_batch"] = r.tokens_per_batch;
  j["device_busy"] = r.device_busy;
  return j;
}

void print_table_row(const wl::WorkloadResult& r) {
  if (r.skipped) {
    std::printf("%-10s %-12s skipped: %s\n", r.name.c_str(), r.mode.c_str(), r.note.c_str());
    return;
  }
  std::printf("%-10s %-12s %8zu %10llu %9.3f %12.1f %12.2f %10.3f %10.3f %8llu %9.0f %6.0f%% %8.3f %8.3f %8.3f",
              r.name.c_str(), r.mode.c_str(), r.texts, static_cast<unsigned long long>(r.tokens), r.seconds,
              r.tokens_per_s, r.embeddings_per_s, r.p50_ms, r.p99_ms, static_cast<unsigned long long>(r.batches),
              r.tokens_per_batch, 100.0 * r.device_busy, r.mean_tokenize_ms, r.mean_queue_ms, r.mean_inference_ms);
  if (r.mode == "background") std::printf("  backlog %.1f tokens/s", r.backlog_tokens_per_s);
  std::printf("\n");
  std::fflush(stdout);
}

int run_bench(const BenchFlags& flags) {
  std::vector<std::string> names;
  if (flags.workload == "all") {
    names = wl::workload_names();
  } else {
    names.push_back(flags.workload);
  }
  wl::BenchConfig config;
  config.repeat = flags.repeat;
  config.background = flags.background;
  config.seed = flags.seed;
  config.mode = flags.mode == "sequential"     ? wl::MixedMode::kSequential
                : flags.mode == "single-batch" ? wl::MixedMode::kSingleBatch
                                               : wl::MixedMode::kConcurrent;
  auto engine = load_engine(flags.model);
  if (!engine.ok()) return print_error("bench", engine.status());
  auto factory = wl::TextFactory::create(**engine, flags.seed);
  if (!factory.ok()) return print_error("bench", factory.status());
  const ModelInfo& info = (*engine)->info();
  if (!flags.json) {
    std::string threads = flags.model.threads > 0 ? std::to_string(flags.model.threads) : "all cores";
    std::printf("model %s (%s, %s on %s), threads: %s\n", info.model_id.c_str(), info.architecture.c_str(),
                info.compute_dtype.c_str(), flags.model.device.c_str(), threads.c_str());
    std::printf("%-10s %-12s %8s %10s %9s %12s %12s %10s %10s %8s %9s %7s %8s %8s %8s\n", "workload", "mode",
                "texts", "tokens", "seconds", "tokens/s", "embeds/s", "p50 ms", "p99 ms", "batches", "tok/batch",
                "device", "tok ms", "queue ms", "infer ms");
  }
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  for (const auto& name : names) {
    auto result = wl::run_workload(**engine, *factory, name, config);
    if (!result.ok()) return print_error("bench", result.status());
    if (flags.json) {
      results.push_back(result_json(*result));
    } else {
      print_table_row(*result);
    }
  }
  if (flags.json) {
    nlohmann::ordered_json out;
    out["engine"] = "embd";
    out["version"] = kVersion;
    out["model"] = info.model_id;
    out["architecture"] = info.architecture;
    out["device"] = flags.model.device;
    out["devices"] = info.devices;
    out["dtype"] = info.compute_dtype;
    out["stored_dtype"] = info.stored_dtype;
    out["threads"] = flags.model.threads;
    out["hardware_threads"] = std::thread::hardware_concurrency();
    out["date"] = utc_now();
    out["command"] = command_line(flags);
    out["workloads"] = results;
    std::printf("%s\n", out.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
  }
  return 0;
}

}  // namespace

CommandRun add_bench_command(CLI::App& root) {
  auto* cmd = root.add_subcommand("bench", "time the standard workloads (tokens/s, embeddings/s, p50/p99 latency)");
  auto flags = std::make_shared<BenchFlags>();
  add_model_flags(*cmd, flags->model, /*compute=*/true);
  std::vector<std::string> choices = wl::workload_names();
  choices.push_back("all");
  cmd->add_option("-w,--workload", flags->workload, "workload to run")
      ->check(CLI::IsMember(choices))
      ->capture_default_str();
  cmd->add_option("--mode", flags->mode,
                  "mixed4096 submission: 32 threads at once, one request at a time, or one sorted request")
      ->check(CLI::IsMember({"concurrent", "sequential", "single-batch"}))
      ->capture_default_str();
  cmd->add_option("--repeat", flags->repeat, "timed rounds per workload (after one warm-up)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_flag("--background", flags->background, "time q16 while a batch-priority backlog runs");
  cmd->add_option("--seed", flags->seed, "seed of the synthetic texts")->capture_default_str();
  cmd->add_flag("--json", flags->json, "print one JSON object instead of a table");
  return [flags]() { return run_bench(*flags); };
}

}  // namespace embd::cli
