// `embd serve`: the HTTP server (TEI and OpenAI embedding routes) over one model.
//
// Every flag can also come from the environment variable named in its help (TEI's names where
// TEI has the flag). The server binds first, so /health answers 503 while the model loads; when
// the model is ready one line "embd serve: listening on http://HOST:PORT ..." goes to stdout
// (with --port 0 it carries the port the system chose). SIGINT/SIGTERM: stop accepting, answer
// the requests already received, exit 0.
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "cli_common.h"
#include "commands.h"
#include "embd/engine.hpp"
#include "server/server.h"

namespace embd::cli {
namespace {

struct ServeFlags {
  ModelFlags model;
  server::ServerOptions server;
  std::size_t max_batch_tokens = 16384;
  std::size_t max_queued_tokens = 0;
};

void add_server_flags(CLI::App& cmd, ServeFlags& f) {
  auto& s = f.server;
  cmd.add_option("--port", s.port, "TCP port (0 = any free port)")
      ->envname("PORT")->capture_default_str();
  cmd.add_option("--host", s.host, "address to listen on")
      ->envname("HOSTNAME")->capture_default_str();
  cmd.add_option("--max-batch-tokens", f.max_batch_tokens,
                 "token budget per device batch")
      ->envname("MAX_BATCH_TOKENS")->check(CLI::PositiveNumber)->capture_default_str();
  cmd.add_option("--graph-tokens", f.model.graph_tokens,
                 "GPU batches of at most this many tokens replay as CUDA graphs (0 = never)")
      ->envname("EMBD_GRAPH_TOKENS")->capture_default_str();
  cmd.add_option("--fill-delay-us", f.model.fill_delay_us,
                 "microseconds a device waits for more requests when less than a batch is queued")
      ->envname("EMBD_FILL_DELAY_US")->check(CLI::NonNegativeNumber)->capture_default_str();
  add_return_wait_flag(cmd, f.model)->envname("EMBD_RETURN_WAIT_US");
  cmd.add_option("--max-client-batch-size", s.max_client_batch_size,
                 "inputs per request")
      ->envname("MAX_CLIENT_BATCH_SIZE")->check(CLI::PositiveNumber)->capture_default_str();
  cmd.add_option("--max-concurrent-requests", s.max_concurrent_requests,
                 "inputs admitted at once; beyond it 429")
      ->envname("MAX_CONCURRENT_REQUESTS")->check(CLI::PositiveNumber)->capture_default_str();
  cmd.add_option("--max-request-tokens", s.max_request_tokens,
                 "tokens per request, 0 = no limit")
      ->envname("MAX_REQUEST_TOKENS")->capture_default_str();
  cmd.add_option("--max-connections", s.max_connections,
                 "open connections; beyond it a new one gets 503 and is closed")
      ->envname("EMBD_MAX_CONNECTIONS")->check(CLI::PositiveNumber)->capture_default_str();
  cmd.add_option("--payload-limit", s.payload_limit, "request body bytes")
      ->envname("PAYLOAD_LIMIT")->check(CLI::PositiveNumber)->capture_default_str();
  cmd.add_flag("--auto-truncate", s.auto_truncate,
               "truncate inputs longer than the model's maximum instead of failing")
      ->envname("AUTO_TRUNCATE");
  cmd.add_option("--api-key", s.api_key, "require `Authorization: Bearer <key>`")
      ->envname("API_KEY");
  cmd.add_option("--served-model-name", s.served_model_name,
                 "model name in OpenAI responses and /info")
      ->envname("SERVED_MODEL_NAME");
  cmd.add_option("--io-threads", s.io_threads, "network threads, 0 = max(2, cores / 2)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd.add_option("--io-spin-us", s.io_spin_us,
                 "microseconds an idle network thread polls before it sleeps (lower latency, "
                 "more CPU), 0 = none")
      ->envname("EMBD_IO_SPIN_US")->check(CLI::Range(0, 1000000))->capture_default_str();
  cmd.add_option("--workers", s.workers,
                 "request parsing / tokenization / encoding threads, 0 = max(2, cores / 2)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd.add_option("--max-queued-tokens", f.max_queued_tokens,
                 "engine back-pressure: queued tokens beyond which requests get 429 (0 = default)");
}

// File descriptors the process needs besides connections (model files, epoll, timers, pipes).
constexpr rlim_t kReservedDescriptors = 128;

// Raises the soft open-file limit so --max-connections fits under it, or lowers the cap to what
// the hard limit allows (saying so), so that accept() never runs out of descriptors.
void fit_descriptor_limit(std::size_t& max_connections) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  const rlim_t wanted = static_cast<rlim_t>(max_connections) + kReservedDescriptors;
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < wanted) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max == RLIM_INFINITY ? wanted : std::min(wanted, limit.rlim_max);
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < wanted) {
    const rlim_t fit = limit.rlim_cur > 2 * kReservedDescriptors
                           ? limit.rlim_cur - kReservedDescriptors
                           : limit.rlim_cur / 2;
    std::fprintf(stderr,
                 "embd serve: --max-connections %zu lowered to %zu: the open-file limit is %llu\n",
                 max_connections, static_cast<std::size_t>(fit),
                 static_cast<unsigned long long>(limit.rlim_cur));
    max_connections = static_cast<std::size_t>(fit);
  }
}

int run_serve(ServeFlags& f) {
  f.server.handle_signals = true;
  fit_descriptor_limit(f.server.max_connections);
  f.server.max_batch_tokens = f.max_batch_tokens;
  f.server.tokenization_workers = f.server.workers;
  auto server = server::Server::start(f.server);
  if (!server.ok()) return print_error("serve", server.status());
  std::fprintf(stderr, "embd serve: loading %s (port %u answers /health with 503 meanwhile)\n",
               f.model.model.c_str(), unsigned((*server)->port()));
  LoadOptions options = load_options(f.model);
  options.max_batch_tokens = f.max_batch_tokens;
  if (f.max_queued_tokens > 0) options.max_queued_tokens = f.max_queued_tokens;
  auto engine = Engine::load(f.model.model, options);
  if (!engine.ok()) {
    (*server)->shutdown();
    return print_error("serve", engine.status());
  }
  std::shared_ptr<Engine> shared = std::move(engine).value();
  const std::string model_id = shared->info().model_id;
  (*server)->set_engine(shared);
  std::printf("embd serve: listening on http://%s:%u (model %s)\n", f.server.host.c_str(),
              unsigned((*server)->port()), model_id.c_str());
  std::fflush(stdout);
  const int signal = (*server)->wait_for_signal();
  std::fprintf(stderr, "embd serve: signal %d, finishing accepted requests\n", signal);
  (*server)->shutdown();
  std::fprintf(stderr, "embd serve: stopped\n");
  return 0;
}

}  // namespace

CommandRun add_serve_command(CLI::App& root) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* cmd = root.add_subcommand("serve", "serve embeddings over HTTP (TEI and OpenAI APIs)");
  cmd->add_option("-m,--model", flags->model.model,
                  "model directory or Hugging Face id (org/name[@rev])")
      ->envname("MODEL_ID")->required();
  cmd->add_option("--dtype", flags->model.dtype, "compute dtype")
      ->envname("DTYPE")->check(CLI::IsMember({"auto", "f32", "f16", "bf16"}))
      ->capture_default_str();
  cmd->add_option("--device", flags->model.device, "cpu, cuda or cuda:N")
      ->envname("DEVICE")->capture_default_str();
  cmd->add_option("--threads", flags->model.threads, "CPU threads, 0 = all cores")
      ->envname("THREADS")->check(CLI::NonNegativeNumber);
  add_query_lane_flag(*cmd, flags->model)->envname("EMBD_QUERY_LANE");
  add_concurrent_batches_flag(*cmd, flags->model)->envname("EMBD_CONCURRENT_BATCHES");
  cmd->add_option("--max-length", flags->model.max_length,
                  "maximum input length in tokens, specials included (0 = the model's)");
  cmd->add_flag("--offline", flags->model.offline, "never touch the network");
  add_batch_trace_flag(*cmd, flags->model)->envname("EMBD_BATCH_TRACE");
  add_warm_up_flag(*cmd, flags->model)->envname("EMBD_NO_WARM_UP");
  add_server_flags(*cmd, *flags);
  return [flags] { return run_serve(*flags); };
}

}  // namespace embd::cli
