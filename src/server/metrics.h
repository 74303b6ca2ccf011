// Server-side request metrics and the Prometheus text rendering of /metrics.
//
// Names follow text-embeddings-inference (te_*) so existing dashboards and autoscalers work:
// te_request_count / te_request_success / te_request_failure{err} counters, a te_request_duration
// histogram (seconds), te_queue_size, and the engine's histograms (te_queue_duration,
// te_inference_duration, te_batch_tokens, te_batch_next_size) from Engine::stats(). The engine's
// own counters appear as embd_engine_*. ServerMetrics is lock-free (atomics): record_*() may be
// called from any thread; render is a consistent-enough snapshot (each value read once).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "embd/engine.hpp"

namespace embd::server {

class ServerMetrics {
 public:
  // Request duration bucket bounds in seconds (upper bounds; +Inf implied).
  static constexpr std::array<double, 14> kDurationBounds = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

  // One embedding/tokenize request arrived (after routing).
  void record_request();
  void record_success(double seconds, std::uint64_t inputs, std::uint64_t tokens);
  // `error_label` is a short Prometheus label value, e.g. "validation", "overloaded".
  void record_failure(std::string_view error_label);
  void add_in_flight(std::int64_t delta) { in_flight_.fetch_add(delta, std::memory_order_relaxed); }

  // Prometheus text exposition format 0.0.4. `engine` may be null (model not loaded yet).
  std::string render(const EngineStats* engine) const;

 private:
  static constexpr std::array<std::string_view, 8> kErrorLabels = {
      "validation", "empty", "too_large", "overloaded", "unauthorized", "cancelled",
      "unavailable", "backend"};

  std::atomic<std::uint64_t> requests_{0};
  std::atomic<std::uint64_t> successes_{0};
  std::atomic<std::uint64_t> inputs_{0};
  std::atomic<std::uint64_t> tokens_{0};
  std::array<std::atomic<std::uint64_t>, kErrorLabels.size()> failures_{};
  std::array<std::atomic<std::uint64_t>, kDurationBounds.size() + 1> duration_buckets_{};
  std::atomic<std::uint64_t> duration_sum_us_{0};
  std::atomic<std::int64_t> in_flight_{0};
};

// The error label for ServerMetrics::record_failure of an API error kind's HTTP status family.
std::string_view failure_label(int http_status, bool empty_input);

// Appends one Prometheus histogram (bucket lines, _sum, _count) with HELP and TYPE lines.
void append_histogram(std::string& out, std::string_view name, std::string_view help,
                      const Histogram& histogram);

}  // namespace embd::server
