// The load generator's HTTP side: many keep-alive connections driven by a few event-loop threads
// (Boost.Asio, one io_context per thread), as wrk does. A blocking thread per connection costs
// the shared host a context switch per request on each side of the socket, which at 256
// connections took CPU from the server under test.
//
// Each connection sends one request at a time (no pipelining) and times it from the first byte
// written to the last byte of the response read.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace embd::bench {

// Starts the clock once every worker (its thread, and its connections for HTTP) is ready, so
// thread and TCP setup are not counted as request time. `on_start` runs just before the start.
class StartLine {
 public:
  StartLine(int workers, std::function<void()> on_start)
      : ready_(workers), on_start_(std::move(on_start)) {}
  void arrive_and_wait() {
    if (ready_.fetch_sub(1) == 1) {
      if (on_start_) on_start_();
      start_ = std::chrono::steady_clock::now();
      go_.store(true, std::memory_order_release);
      go_.notify_all();
    }
    go_.wait(false, std::memory_order_acquire);
  }
  // Once arrive_and_wait() has returned (the release/acquire on go_ publishes it).
  std::chrono::steady_clock::time_point start() const { return start_; }

 private:
  std::atomic<int> ready_;
  std::function<void()> on_start_;
  std::atomic<bool> go_{false};
  std::chrono::steady_clock::time_point start_;
};

struct LoadRun {
  std::vector<double> latency_ms;  // one per successful request (status 200)
  std::size_t failures = 0;
  // Sums of the server's timing headers (ms) over successful responses.
  double total_ms = 0, compute_ms = 0, tokenize_ms = 0, queue_ms = 0, inference_ms = 0;
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
