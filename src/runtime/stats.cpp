#include "runtime/stats.h"

#include <algorithm>
#include <utility>

namespace embd::runtime {
namespace {

// Latency buckets from 100 us to 1 min; sizes in powers of two.
std::vector<double> seconds_bounds() {
  return {1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05,
          0.1,  0.25,   0.5,  1.0,  2.5,    5.0,  10.0, 30.0,  60.0};
}

std::vector<double> power_of_two_bounds(double last) {
  std::vector<double> bounds;
  for (double b = 1; b <= last; b *= 2) bounds.push_back(b);
  return bounds;
}

}  // namespace

AtomicHistogram::AtomicHistogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {
  for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void AtomicHistogram::observe(double value) {
  // First bucket whose upper bound holds the value; past the last bound goes to the +Inf bucket.
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
  buckets_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

Histogram AtomicHistogram::snapshot() const {
  Histogram h;
  h.bounds = bounds_;
  h.counts.resize(bounds_.size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    h.counts[i] = running;
  }
  // `count` is the total of the buckets read, so the histogram is self-consistent even while
  // other threads observe.
  h.count = running;
  h.sum = sum_.load(std::memory_order_relaxed);
  return h;
}

Stats::Stats()
    : queue_time_(seconds_bounds()),
      inference_time_(seconds_bounds()),
      batch_tokens_(power_of_two_bounds(1 << 20)),
      batch_requests_(power_of_two_bounds(1 << 14)) {}

void Stats::record_batch(std::size_t tokens, std::size_t sequences, double seconds, bool ok) {
  add(batches_);
  if (ok) add(tokens_embedded_, tokens);
  inference_time_.observe(seconds);
  batch_tokens_.observe(static_cast<double>(tokens));
  batch_requests_.observe(static_cast<double>(sequences));
}

void Stats::set_queue(const std::array<std::size_t, 3>& requests_by_priority, std::size_t tokens) {
  for (std::size_t p = 0; p < 3; ++p) {
    queued_requests_[p].store(requests_by_priority[p], std::memory_order_relaxed);
  }
  queued_tokens_.store(tokens, std::memory_order_relaxed);
}

EngineStats Stats::snapshot() const {
  const auto load = [](const std::atomic<std::uint64_t>& a) {
    return a.load(std::memory_order_relaxed);
  };
  EngineStats s;
  s.requests_submitted = load(requests_submitted_);
  s.requests_completed = load(requests_completed_);
  s.requests_failed = load(requests_failed_);
  s.rejected_overloaded = load(rejected_overloaded_);
  s.rejected_invalid = load(rejected_invalid_);
  s.cancelled = load(cancelled_);
  s.deadline_exceeded = load(deadline_exceeded_);
  s.tokens_embedded = load(tokens_embedded_);
  s.batches = load(batches_);
  for (std::size_t p = 0; p < 3; ++p) s.queued_requests[p] = load(queued_requests_[p]);
  s.queued_tokens = load(queued_tokens_);
  s.queue_time_seconds = queue_time_.snapshot();
  s.inference_time_seconds = inference_time_.snapshot();
  s.batch_tokens = batch_tokens_.snapshot();
  s.batch_requests = batch_requests_.snapshot();
  return s;
}

}  // namespace embd::runtime
