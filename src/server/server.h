// embd's HTTP server: TEI- and OpenAI-compatible embedding routes over one embd::Engine.
//
// Routes: POST /embed (TEI), POST /v1/embeddings and /embeddings (OpenAI), POST /tokenize,
// GET /info, GET /health (also / and /ping), GET /metrics (Prometheus). Request and error shapes
// follow shared/research/peers.md §4; error statuses are in api_error.h.
//
// Threads: a few I/O threads (http_server.h) move bytes and handle small requests themselves
// (parse, validate, tokenise, submit); a small worker pool does that for large bodies and
// encodes large results. The engine reports each request through a completion callback on its
// executor thread, which encodes small results and posts the response to the connection. No
// thread ever blocks on the engine.
//
// Lifecycle: start() binds and serves at once (/health answers 503 until set_engine());
// shutdown() stops accepting, answers every request already read, then returns. The Server
// shares ownership of the engine. Thread-safety: all methods may be called from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "embd/engine.hpp"
#include "embd/status.hpp"

namespace embd::server {

struct ServerOptions {
  std::string host = "0.0.0.0";
  std::uint16_t port = 8080;  // 0 = any free port
  // 0 = sized to the machine: I/O max(2, cores / 2), workers (parse / validate / encode pool)
  // max(2, cores / 2); a fixed pair starves a many-core GPU host, and one I/O thread per core
  // was 15-20% slower than half as many at 256 connections on a 16-core H200 host (run 145).
  int io_threads = 0;
  int workers = 0;
  // Microseconds an I/O thread with nothing to do keeps polling before it sleeps (see "Idle
  // spin" in http_server.h); 0 = sleep at once. On an H200 host 200 cut a single query's p50 by
  // 0.02 ms; at 16 and 256 connections it changed nothing beyond noise but the CPU it burns
  // (BENCHMARKS.md, runs 147-149).
  int io_spin_us = 0;
  std::size_t payload_limit = 8u << 20;        // bytes per request body (413 beyond)
  std::size_t max_client_batch_size = 32;      // inputs per request
  std::size_t max_concurrent_requests = 512;   // admission permits, one per input (429 beyond)
  std::size_t max_request_tokens = 300000;     // tokens per request, 0 = no limit
  std::size_t max_connections = 4096;          // open connections (503 and close beyond)
  // Results of at least twice this many floats are encoded in pieces of about this many, on
  // several workers at once (latency of large responses).
  std::size_t encode_piece_floats = 4096;
  bool auto_truncate = false;                  // default of `truncate`; OpenAI routes always use it
  std::string api_key;                         // non-empty: require `Authorization: Bearer <key>`
  std::string served_model_name;               // "" = the engine's model id
  // Reported by /info (the engine was loaded with them).
  std::size_t max_batch_tokens = 0;
  std::size_t max_batch_requests = 0;
  int tokenization_workers = 0;
  bool handle_signals = false;  // let wait_for_signal() catch SIGINT/SIGTERM
  std::chrono::milliseconds shutdown_grace{30000};
};

class Server {
 public:
  static Result<std::unique_ptr<Server>> start(const ServerOptions& options);
  ~Server();  // shutdown()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Makes the model available; /health turns 200.
  void set_engine(std::shared_ptr<Engine> engine);
  std::uint16_t port() const;
  // Blocks until SIGINT/SIGTERM (with handle_signals) or shutdown(); returns the signal or 0.
  int wait_for_signal();
  // Graceful: stop accepting, finish accepted requests (up to shutdown_grace), close. Idempotent.
  void shutdown();

  class Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace embd::server
