// The load generator's HTTP side: many keep-alive connections driven by a few event-loop threads
// (Boost.Asio, one io_context per thread), as wrk does. A blocking thread per connection costs
// the shared host a context switch per request on each side of the socket, which at 256
// connections took CPU from the server under test.
//
// Each connection sends one request at a time (no pipelining) and times it from the first byte
// written to the last byte of the response read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace embd::bench {

struct LoadRun {
  std::vector<double> latency_ms;  // one per successful request (status 200)
  std::size_t failures = 0;
  // Sums of the server's timing headers (ms) over successful responses.
  double total_ms = 0, tokenize_ms = 0, queue_ms = 0, inference_ms = 0;
};

struct LoadPlan {
  std::uint16_t port = 0;
  std::string target = "/embed";
  const std::vector<std::string>* bodies = nullptr;  // POST bodies, round robin
  int connections = 1;
  int threads = 1;  // event loops; at most `connections`
  // The index of the next request to send, or nullopt when the run is over. Thread-safe.
  std::function<std::optional<std::size_t>()> next;
  // Runs once every connection is open, just before the first request is sent.
  std::function<void()> on_start;
};

// Runs the plan to its end and merges what every connection saw. A connection that fails
// (closed, garbage, non-200) counts the failure and reconnects for its next request.
LoadRun run_load(const LoadPlan& plan);

}  // namespace embd::bench
