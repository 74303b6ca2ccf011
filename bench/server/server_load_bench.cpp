// Load client for `embd serve`: N keep-alive connections on loopback (driven by a few event-loop
// threads, load_client.h), fixed request counts,
// throughput and p50/p99 latency per scenario, plus the library-only latency of the same inputs
// in the same run (Engine::embed in this process, same model) to show the server's overhead.
//
// Scenarios (DESIGN.md workloads): q16 (one 16-token text per request) at concurrency 1, 16 and
// 256; b32x128 (32 texts of 128 tokens per request) at concurrency 1 and 4; tok16 (q16's
// requests to /tokenize, server only: the HTTP round trip without the engine) at 1, 16 and 256;
// q16b64 and b32b64 (the same inputs to the OpenAI route with `encoding_format: base64`, server
// only: what printing the floats as JSON text costs; compare with the library's q16 / b32x128).
//
//   server_load_bench --model DIR --port P            # against a running `embd serve`
//   server_load_bench --model DIR --serve BIN         # spawns `BIN serve --port 0` itself
// Options: --requests N (per scenario, default 2000 for q16, 100 for b32x128; --batch-requests N
// sets b32x128's alone, after --requests), --seconds S (also stop each measured run, server and
// library alike, after S seconds: with a large --requests, a steady-state window of a fixed
// length; 2000 queries at 256 connections last only ~30 ms on a GPU), --threads T,
// --device D and --dtype T (for the library engine and the spawned server alike; default cpu, auto),
// --io-threads N and --workers N (the spawned server's; default 0 = machine-sized),
// --fill-delay-us N and --return-wait-us N (the batch fill delay and return wait of both
// engines), --only LIST (scenarios and concurrencies to run, e.g. "q16:256,b32x128:16", any
// concurrency; default all at the concurrencies above), --no-library (skip the library rows, e.g. while profiling),
// --warmup N (unmeasured requests at the scenario's concurrency before each measured run, server
// and library alike, default 0: a new mix of batch shapes is recorded as CUDA graphs on first
// sight, and without a warm-up those recordings land in the measured tail), --client-threads N
// (the load's event loops, default a quarter of the machine's hardware threads), --batch-trace F
// (both engines write their device batches' timelines when they stop, as `embd --batch-trace`:
// the library's to F.library.csv, the spawned server's to F.server.csv).
//
// CPU per request: each row also shows the CPU time its measured run cost, in microseconds per
// request: on server rows the server's (when this tool spawned it: /proc/PID/stat) and this
// process's (the load client's), on library rows this process's (callers, engine threads). On a
// shared host throughput swings with what else runs; CPU per request says what the server costs.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "embd/engine.hpp"
#include "load_client.h"
#include "workloads.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace wl = embd::workloads;

struct Args {
  std::string model;
  std::string serve_binary;
  std::uint16_t port = 0;
  std::size_t q16_requests = 2000;
  std::size_t batch_requests = 100;
  int threads = 0;
  std::string device = "cpu";
  std::string dtype = "auto";
  int io_threads = 0;  // for the spawned server; 0 = its machine-sized default
  int workers = 0;
  long fill_delay_us = -1;  // both engines; -1 = the default
  long return_wait_us = -1;  // both engines; -1 = the default
  std::string only;         // "scenario:concurrency,..."; empty = all
  bool library = true;
  std::size_t warmup = 0;   // q16 requests per warm-up run (b32x128: a tenth, at least 1)
  double seconds = 0;       // each measured run also ends after this long; 0 = no time limit
  int client_threads = 0;   // event loops of the HTTP load; 0 = a quarter of the machine's threads
  std::string batch_trace;  // file prefix of both engines' batch traces; empty = none
  // The concurrencies to run `scenario` at: its defaults, or those --only names for it (any
  // number, e.g. "b32x128:16" on a host with several GPUs).
  std::vector<int> concurrencies(const std::string& scenario, const std::vector<int>& defaults) const {
    if (only.empty()) return defaults;
    std::vector<int> picked;
    std::size_t pos = 0;
    while (pos <= only.size()) {
      const std::size_t end = std::min(only.find(',', pos), only.size());
      const std::string item = only.substr(pos, end - pos);
      const std::size_t colon = item.rfind(':');
      if (colon != std::string::npos && item.compare(0, colon, scenario) == 0) {
        picked.push_back(std::atoi(item.c_str() + colon + 1));
      }
      pos = end + 1;
    }
    return picked;
  }
};

struct Stats {
  std::size_t requests = 0, failures = 0, texts = 0;
  double seconds = 0, p50_ms = 0, p99_ms = 0;
  double mean_ms = 0;  // mean latency: concurrency / mean = the closed loop's throughput
  // Means (ms) of the engine's own times (Embeddings' tokenization, queue and inference
  // seconds; on server rows from the x-tokenization/queue/inference-time headers).
  double tokenize_ms = 0, queue_ms = 0, inference_ms = 0;
  // Server rows: the means of x-total-time (request read to response encoded) and
  // x-compute-time (handed to the engine to the engine's completion callback).
  double server_total_ms = 0, compute_ms = 0;
  // CPU seconds spent during the measured run: by this process, and by the spawned server
  // (negative when unknown: a server this tool did not start).
  double own_cpu_seconds = 0, server_cpu_seconds = -1;
};

// CPU time (user + system) of this process, in seconds.
double this_process_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) * 1e-6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// CPU time (user + system) of process `pid` from /proc/PID/stat, in seconds; -1 if unreadable.
double process_cpu_seconds(pid_t pid) {
  if (pid <= 0) return -1;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name (which is in parentheses and may hold spaces): state is
  // field 3, utime and stime are fields 14 and 15, in clock ticks.
  const std::size_t close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int index = 3; fields >> field; ++index) {
    if (index == 14) utime = std::stoull(field);
    if (index == 15) {
      stime = std::stoull(field);
      return double(utime + stime) / double(sysconf(_SC_CLK_TCK));
    }
  }
  return -1;
}

// Measures the CPU both processes spend between its construction and stop().
class CpuMeter {
 public:
  explicit CpuMeter(pid_t server) : server_(server), own_(this_process_cpu_seconds()),
                                    server_start_(process_cpu_seconds(server)) {}
  void stop(Stats& s) const {
    s.own_cpu_seconds = this_process_cpu_seconds() - own_;
    const double now = process_cpu_seconds(server_);
    if (server_start_ >= 0 && now >= 0) s.server_cpu_seconds = now - server_start_;
  }

 private:
  pid_t server_;
  double own_, server_start_;
};

Stats summarize(std::vector<double> ms, double seconds, std::size_t failures,
                std::size_t texts_per_request) {
  Stats s;
  s.requests = ms.size();
  s.failures = failures;
  s.texts = ms.size() * texts_per_request;
  s.seconds = seconds;
  if (!ms.empty()) {
    std::sort(ms.begin(), ms.end());
    s.mean_ms = std::accumulate(ms.begin(), ms.end(), 0.0) / double(ms.size());
    s.p50_ms = ms[ms.size() / 2];
    s.p99_ms = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
  }
  return s;
}

// How much a run does: at most `requests` requests, and none started after `seconds` (0: no limit).
struct Budget {
  std::size_t requests = 0;
  double seconds = 0;
  Clock::time_point deadline(Clock::time_point start) const {
    return seconds > 0 ? start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds))
                       : Clock::time_point::max();
  }
};

// POSTs of `bodies` (round robin) over `concurrency` keep-alive connections, within `budget`,
// from `client_threads` event loops.
Stats run_http(std::uint16_t port, pid_t server, const std::vector<std::string>& bodies,
               Budget budget, int concurrency, int client_threads, std::size_t texts_per_request,
               const std::string& target = "/embed") {
  std::atomic<std::size_t> next{0};
  std::optional<CpuMeter> cpu;
  Clock::time_point start, deadline;
  embd::bench::LoadPlan plan;
  plan.port = port;
  plan.target = target;
  plan.bodies = &bodies;
  plan.connections = concurrency;
  plan.threads = client_threads;
  plan.on_start = [&] {
    cpu.emplace(server);
    start = Clock::now();
    deadline = budget.deadline(start);
  };
  plan.next = [&]() -> std::optional<std::size_t> {
    const std::size_t i = next.fetch_add(1);
    if (i >= budget.requests || Clock::now() >= deadline) return std::nullopt;
    return i;
  };
  auto run = embd::bench::run_load(plan);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const std::size_t ok = run.latency_ms.size();
  Stats s = summarize(std::move(run.latency_ms), seconds, run.failures, texts_per_request);
  cpu->stop(s);
  if (ok > 0) {
    s.server_total_ms = run.total_ms / double(ok);
    s.compute_ms = run.compute_ms / double(ok);
    s.tokenize_ms = run.tokenize_ms / double(ok);
    s.queue_ms = run.queue_ms / double(ok);
    s.inference_ms = run.inference_ms / double(ok);
  }
  return s;
}

// The same inputs through Engine::embed in this process, within `budget`.
Stats run_library(embd::Engine& engine, const std::vector<std::vector<std::string>>& inputs, Budget budget,
                  int concurrency) {
  std::atomic<std::size_t> next{0}, failures{0};
  std::vector<std::vector<double>> latencies(concurrency);
  struct EngineTimes {
    double tokenize = 0, queue = 0, inference = 0;  // seconds, summed
  };
  std::vector<EngineTimes> times(concurrency);
  std::vector<std::thread> threads;
  std::optional<CpuMeter> cpu;
  embd::bench::StartLine line(concurrency, [&] { cpu.emplace(0); });
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&, t] {
      line.arrive_and_wait();
      const auto deadline = budget.deadline(line.start());
      for (std::size_t i; (i = next.fetch_add(1)) < budget.requests && Clock::now() < deadline;) {
        const auto t0 = Clock::now();
        auto r = engine.embed(inputs[i % inputs.size()]).get();
        if (!r.ok()) {
          failures.fetch_add(1);
          continue;
        }
        latencies[t].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        times[t].tokenize += r->tokenization_seconds;
        times[t].queue += r->queue_seconds;
        times[t].inference += r->inference_seconds;
      }
    });
  }
  for (auto& th : threads) th.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - line.start()).count();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  Stats s = summarize(std::move(all), seconds, failures.load(), inputs[0].size());
  cpu->stop(s);
  if (s.requests > 0) {
    for (const auto& t : times) {
      s.tokenize_ms += t.tokenize * 1e3 / double(s.requests);
      s.queue_ms += t.queue * 1e3 / double(s.requests);
      s.inference_ms += t.inference * 1e3 / double(s.requests);
    }
  }
  return s;
}

void print(const char* what, const char* scenario, int concurrency, const Stats& s,
           std::size_t tokens_per_request) {
  const double rps = s.seconds > 0 ? double(s.requests) / s.seconds : 0;
  std::printf("%-8s %-8s c=%-4d %7zu req %5zu fail %8.1f req/s %10.0f tok/s %9.3f p50 ms %9.3f p99 ms\n",
              what, scenario, concurrency, s.requests, s.failures, rps,
              rps * double(tokens_per_request), s.p50_ms, s.p99_ms);
  if (s.requests > 0) {
    const double per_request = 1e6 / double(s.requests);
    if (s.server_cpu_seconds >= 0) {
      std::printf("         (cpu us/request: server %.1f, load client %.1f)\n",
                  s.server_cpu_seconds * per_request, s.own_cpu_seconds * per_request);
    } else {
      std::printf("         (cpu us/request: this process %.1f)\n", s.own_cpu_seconds * per_request);
    }
  }
  if (s.requests == 0) return;
  // Where the mean latency goes. Engine: tokenising, queueing and inference as the engine counts
  // them; on server rows also the engine's whole span (x-compute-time), and the server's from
  // reading the request to encoding the response (x-total-time), so total - compute is the
  // server's own work and hand-offs, latency - total the network and the client.
  std::printf("         (mean ms: latency %.3f", s.mean_ms);
  if (s.tokenize_ms + s.queue_ms + s.inference_ms > 0) {  // not on tok16 rows: no engine
    std::printf("; engine tokenize %.3f + queue %.3f + inference %.3f", s.tokenize_ms, s.queue_ms,
                s.inference_ms);
  }
  if (s.server_total_ms > 0) {
    std::printf("; server total %.3f = engine span %.3f + server %.3f", s.server_total_ms,
                s.compute_ms, s.server_total_ms - s.compute_ms);
  }
  std::printf(")\n");
}

bool parse_args(int argc, char** argv, Args& a) {
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") a.model = v;
    else if (k == "--serve") a.serve_binary = v;
    else if (k == "--port") a.port = static_cast<std::uint16_t>(std::stoi(v));
    else if (k == "--requests") a.q16_requests = a.batch_requests = std::stoul(v);
    else if (k == "--batch-requests") a.batch_requests = std::stoul(v);
    else if (k == "--threads") a.threads = std::stoi(v);
    else if (k == "--device") a.device = v;
    else if (k == "--dtype") a.dtype = v;
    else if (k == "--io-threads") a.io_threads = std::stoi(v);
    else if (k == "--workers") a.workers = std::stoi(v);
    else if (k == "--fill-delay-us") a.fill_delay_us = std::stol(v);
    else if (k == "--return-wait-us") a.return_wait_us = std::stol(v);
    else if (k == "--only") a.only = v;
    else if (k == "--no-library") a.library = v == "0";
    else if (k == "--warmup") a.warmup = std::stoul(v);
    else if (k == "--seconds") a.seconds = std::stod(v);
    else if (k == "--client-threads") a.client_threads = std::stoi(v);
    else if (k == "--batch-trace") a.batch_trace = v;
    else return false;
  }
  return !a.model.empty() && (a.port != 0 || !a.serve_binary.empty());
}

// Spawns `<binary> serve` on a free port and returns its pid and port (0 on failure).
std::pair<pid_t, std::uint16_t> spawn_server(const Args& a) {
  int fds[2];
  if (pipe(fds) != 0) return {-1, 0};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    if (!a.batch_trace.empty()) setenv("EMBD_BATCH_TRACE", (a.batch_trace + ".server.csv").c_str(), 1);
    std::string threads = std::to_string(a.threads), io = std::to_string(a.io_threads),
                workers = std::to_string(a.workers),
                fill = std::to_string(a.fill_delay_us >= 0 ? a.fill_delay_us
                                                           : embd::LoadOptions{}.batch_fill_delay.count()),
                returns = std::to_string(a.return_wait_us >= 0 ? a.return_wait_us
                                                               : embd::LoadOptions{}.return_wait.count());
    execl(a.serve_binary.c_str(), a.serve_binary.c_str(), "serve", "--model", a.model.c_str(),
          "--host", "127.0.0.1", "--port", "0", "--threads", threads.c_str(), "--device", a.device.c_str(),
          "--dtype", a.dtype.c_str(), "--io-threads", io.c_str(), "--workers", workers.c_str(),
          "--fill-delay-us", fill.c_str(), "--return-wait-us", returns.c_str(),
          "--max-client-batch-size", "64", "--max-concurrent-requests", "4096", nullptr);
    _exit(127);
  }
  close(fds[1]);
  FILE* out = fdopen(fds[0], "r");
  char line[1024];
  while (std::fgets(line, sizeof(line), out)) {
    if (const char* at = std::strstr(line, "listening on http://")) {
      const char* colon = std::strchr(at + 20, ':');
      return {pid, static_cast<std::uint16_t>(std::atoi(colon + 1))};
    }
  }
  return {pid, 0};
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!parse_args(argc, argv, args)) {
    std::fprintf(stderr, "usage: %s --model DIR (--port P | --serve BIN) [--requests N] [--threads T] [--device D] [--dtype T] [--io-threads N] [--workers N] [--fill-delay-us N] [--return-wait-us N] [--only q16:256,...] [--no-library 1] [--warmup N] [--seconds S] [--client-threads N] [--batch-trace F]\n",
                 argv[0]);
    return 2;
  }
  embd::LoadOptions options;
  options.threads = args.threads;
  options.device = args.device;
  options.dtype = args.dtype;
  if (args.fill_delay_us >= 0) options.batch_fill_delay = std::chrono::microseconds(args.fill_delay_us);
  if (args.return_wait_us >= 0) options.return_wait = std::chrono::microseconds(args.return_wait_us);
  if (!args.batch_trace.empty()) options.batch_trace = args.batch_trace + ".library.csv";
  auto engine = embd::Engine::load(args.model, options);
  if (!engine.ok()) {
    std::fprintf(stderr, "%s\n", engine.status().to_string().c_str());
    return 1;
  }
  auto factory = wl::TextFactory::create(**engine, wl::BenchConfig{}.seed);
  if (!factory.ok()) {
    std::fprintf(stderr, "%s\n", factory.status().to_string().c_str());
    return 1;
  }
  auto q16 = factory->make(std::vector<std::size_t>(64, 16));
  auto b32 = factory->make(std::vector<std::size_t>(4 * 32, 128));
  if (!q16.ok() || !b32.ok()) return 1;
  std::vector<std::vector<std::string>> q16_inputs, b32_inputs;
  std::vector<std::string> q16_bodies, b32_bodies, q16_b64_bodies, b32_b64_bodies;
  for (auto& t : *q16) q16_inputs.push_back({t});
  for (std::size_t i = 0; i < 4; ++i) {
    b32_inputs.emplace_back(b32->begin() + i * 32, b32->begin() + (i + 1) * 32);
  }
  for (auto& in : q16_inputs) q16_bodies.push_back(nlohmann::json{{"inputs", in}}.dump());
  for (auto& in : b32_inputs) b32_bodies.push_back(nlohmann::json{{"inputs", in}}.dump());
  const auto openai_base64 = [](const std::vector<std::string>& in) {
    return nlohmann::json{{"input", in}, {"encoding_format", "base64"}}.dump();
  };
  for (auto& in : q16_inputs) q16_b64_bodies.push_back(openai_base64(in));
  for (auto& in : b32_inputs) b32_b64_bodies.push_back(openai_base64(in));

  pid_t child = -1;
  std::uint16_t port = args.port;
  if (!args.serve_binary.empty()) {
    std::tie(child, port) = spawn_server(args);
    if (port == 0) {
      std::fprintf(stderr, "could not start %s serve\n", args.serve_binary.c_str());
      return 1;
    }
  }
  std::printf("server_load_bench: model %s, 127.0.0.1:%u, %u hardware threads\n",
              args.model.c_str(), unsigned(port), std::thread::hardware_concurrency());
  const int client_threads = args.client_threads > 0
                                 ? args.client_threads
                                 : std::max(1, static_cast<int>(std::thread::hardware_concurrency() / 4));
  run_http(port, child, q16_bodies, {50}, 1, 1, 1);  // warm-up: connections, caches
  run_library(**engine, q16_inputs, {50}, 1);
  const Budget q16_budget{args.q16_requests, args.seconds}, batch_budget{args.batch_requests, args.seconds};
  const Budget q16_warmup{args.warmup}, batch_warmup{args.warmup == 0 ? 0 : std::max<std::size_t>(1, args.warmup / 10)};
  // Each scenario's server rows, then (where it has inputs for it) the library's on the same inputs.
  struct Scenario {
    const char* name;
    const std::vector<std::string>* bodies;
    const char* target;
    std::vector<int> concurrencies;
    bool batch;  // b32x128-sized: the batch budget and warm-up
    const std::vector<std::vector<std::string>>* library_inputs;  // null: server rows only
  };
  // tok16: the HTTP floor, q16's requests answered without the engine's queue or device and with a
  // short body, so q16's latency less this row's is what the engine and the encoding add.
  const Scenario scenarios[] = {
      {"q16", &q16_bodies, "/embed", {1, 16, 256}, false, &q16_inputs},
      {"tok16", &q16_bodies, "/tokenize", {1, 16, 256}, false, nullptr},
      {"b32x128", &b32_bodies, "/embed", {1, 4}, true, &b32_inputs},
      {"q16b64", &q16_b64_bodies, "/v1/embeddings", {1, 16, 256}, false, nullptr},
      {"b32b64", &b32_b64_bodies, "/v1/embeddings", {1, 4}, true, nullptr},
  };
  for (const Scenario& sc : scenarios) {
    const Budget budget = sc.batch ? batch_budget : q16_budget;
    const Budget warmup = sc.batch ? batch_warmup : q16_warmup;
    const std::size_t texts = sc.batch ? 32 : 1, tokens = sc.batch ? 32 * 128 : 16;
    for (int c : args.concurrencies(sc.name, sc.concurrencies)) {
      if (c < 1) continue;
      if (warmup.requests > 0) run_http(port, child, *sc.bodies, warmup, c, client_threads, texts, sc.target);
      print("server", sc.name, c, run_http(port, child, *sc.bodies, budget, c, client_threads, texts, sc.target), tokens);
      if (!args.library || sc.library_inputs == nullptr) continue;
      if (warmup.requests > 0) run_library(**engine, *sc.library_inputs, warmup, c);
      print("library", sc.name, c, run_library(**engine, *sc.library_inputs, budget, c), tokens);
    }
  }
  if (child > 0) {
    std::fflush(stdout);  // the rows before the server's shutdown lines, when both go to one file
    kill(child, SIGTERM);
    int status = 0;
    waitpid(child, &status, 0);
  }
  return 0;
}
