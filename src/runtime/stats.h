// Stats: the scheduler's counters and histograms, read out as the public EngineStats.
//
// Every field is a relaxed std::atomic, so recording is lock-free and cheap from any thread
// (submitters, executors); snapshot() may run concurrently with recording and returns values
// that are each exact but not necessarily taken at the same instant. Gauges (queue depth) are
// stored by the scheduler while it holds its own lock, so they are consistent with each other
// at the moment of the store.
//
// Counting rules (what each EngineStats field means):
//   requests_submitted   requests accepted into the queue (rejections are not counted here)
//   requests_completed   requests resolved with embeddings
//   requests_failed      requests resolved with an error other than invalid / overloaded /
//                        cancel / deadline: device errors, shutdown (also a submit after it)
//   rejected_overloaded  submits refused by back-pressure (kOverloaded)
//   rejected_invalid     submits refused as invalid (scheduler or engine validation)
//   cancelled / deadline_exceeded   requests dropped for those reasons (at submit or queued)
//   tokens_embedded      tokens of batches that ran successfully
//   batches              device batches run (successful or not)
//   queue_time_seconds   per request: submit to the dispatch of its first sequence
//   inference_time_seconds / batch_tokens / batch_requests   per device batch
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "embd/engine.hpp"

namespace embd::runtime {

// Fixed-bucket histogram with lock-free observe().
class AtomicHistogram {
 public:
  explicit AtomicHistogram(std::vector<double> bounds);
  void observe(double value);
  Histogram snapshot() const;  // cumulative counts, last = total

 private:
  std::vector<double> bounds_;  // ascending upper bounds; immutable after construction
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // bounds_.size() + 1, not cumulative
  std::atomic<double> sum_{0.0};
  std::atomic<std::uint64_t> count_{0};
};

class Stats {
 public:
  Stats();

  void record_submitted() { add(requests_submitted_); }
  void record_completed() { add(requests_completed_); }
  void record_failed() { add(requests_failed_); }
  void record_rejected_overloaded() { add(rejected_overloaded_); }
  void record_rejected_invalid() { add(rejected_invalid_); }
  void record_cancelled() { add(cancelled_); }
  void record_deadline_exceeded() { add(deadline_exceeded_); }
  void record_queue_time(double seconds) { queue_time_.observe(seconds); }
  // One device batch: its size and how long the device took; `ok` = it produced embeddings.
  void record_batch(std::size_t tokens, std::size_t sequences, double seconds, bool ok);
  // Gauges: current queue contents (called by the scheduler under its lock).
  void set_queue(const std::array<std::size_t, 3>& requests_by_priority, std::size_t tokens);

  EngineStats snapshot() const;

 private:
  static void add(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) {
    counter.fetch_add(n, std::memory_order_relaxed);
  }

  std::atomic<std::uint64_t> requests_submitted_{0};
  std::atomic<std::uint64_t> requests_completed_{0};
  std::atomic<std::uint64_t> requests_failed_{0};
  std::atomic<std::uint64_t> rejected_overloaded_{0};
  std::atomic<std::uint64_t> rejected_invalid_{0};
  std::atomic<std::uint64_t> cancelled_{0};
  std::atomic<std::uint64_t> deadline_exceeded_{0};
  std::atomic<std::uint64_t> tokens_embedded_{0};
  std::atomic<std::uint64_t> batches_{0};
  std::array<std::atomic<std::uint64_t>, 3> queued_requests_{};
  std::atomic<std::uint64_t> queued_tokens_{0};
  AtomicHistogram queue_time_;
  AtomicHistogram inference_time_;
  AtomicHistogram batch_tokens_;
  AtomicHistogram batch_requests_;
};

}  // namespace embd::runtime
