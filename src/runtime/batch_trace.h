// BatchTrace: a timeline of every device batch, for finding where a workload's time goes
// (LoadOptions::batch_trace). Executors add one record per batch; the trace is written as CSV
// when it is destroyed (the engine's end), one line per batch in completion order.
//
// Host times are seconds since the trace was created, on the steady clock. Device times are
// seconds on the device's own clock (Backend::mark_seconds), comparable only between batches of
// the same executor: the gap from one batch's device end to the next one's device begin is time
// that device spent waiting for the host.
//
// Thread-safety: add() and now() may be called from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace embd::runtime {

struct BatchTraceRecord {
  std::string executor;
  std::size_t tokens = 0;
  std::size_t sequences = 0;
  std::size_t max_seqlen = 0;
  double taken = 0;      // the executor had the batch from the scheduler
  double enqueued = 0;   // its device work was enqueued (start() returned)
  double finished = 0;   // its rows were on the host (finish() returned)
  double delivered = 0;  // its requests were resolved or updated (Scheduler::complete returned)
  std::optional<double> device_begin, device_end;
  bool ok = true;
};

class BatchTrace {
 public:
  explicit BatchTrace(std::string path);
  ~BatchTrace();  // write()s; a failure is reported on stderr (the trace is a diagnostic)
  BatchTrace(const BatchTrace&) = delete;
  BatchTrace& operator=(const BatchTrace&) = delete;

  double now() const;
  void add(BatchTraceRecord record);
  // Writes every record so far to the path given at construction.
  Status write() const;

 private:
  const std::string path_;
  const std::chrono::steady_clock::time_point origin_ = std::chrono::steady_clock::now();
  mutable std::mutex mu_;
  std::vector<BatchTraceRecord> records_;  // GUARDED_BY(mu_)
};

}  // namespace embd::runtime
