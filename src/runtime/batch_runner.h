// BatchRunner: runs one PackedBatch on one device and returns a pooled embedding per sequence.
//
// One runner per device. It is created by the factory an Executor calls on its own thread and is
// used and destroyed only on that thread, so an implementation may keep thread-affine device
// state (CUDA context, streams, handles, workspace) without locking. Errors are returned as a
// Status (never thrown); the scheduler fails exactly the requests of that batch with it and the
// executor goes on with the next batch.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "runtime/batch.h"

namespace embd::runtime {

class BatchRunner {
 public:
  virtual ~BatchRunner() = default;

  // Runs the batch. On success `pooled` holds batch.sequences() rows of hidden_size() floats
  // (row i = sequence i of the batch), raw: not normalised, not truncated. The vector is reused
  // between calls, so an implementation should resize it, not reallocate it.
  virtual Status run(const PackedBatch& batch, std::vector<float>& pooled) = 0;
  // Width of one pooled row.
  virtual std::size_t hidden_size() const = 0;
  // Names the device in error messages and stats ("cpu", "cuda:0").
  virtual std::string device_name() const = 0;

  // Pipelining, for runners on asynchronous devices: the executor enqueues the next batch while
  // the current one runs, so the device never waits for the host. With pipeline_depth() > 1 the
  // executor calls start() / wait_almost_done() / finish() instead of run():
  //  * start() enqueues a batch and returns without waiting for the device. An error means the
  //    batch did not start and has nothing to finish.
  //  * wait_almost_done() blocks until the newest started batch is close to its end (on its last
  //    layer), the latest moment to take the next batch from the queue and still keep the
  //    device busy; taking it late lets a query that arrived meanwhile join it. (Where batches run
  //    side by side, on concurrent streams, the next one then fills what the last layer leaves.)
  //  * finish() waits for the oldest started, unfinished batch and points `rows` at its rows,
  //    laid out as run()'s (or returns the error that failed it). They stay valid until the next
  //    start(), finish() or run(), so they are read where they landed (pinned memory on CUDA).
  // At most pipeline_depth() batches are started and not finished.
  virtual std::size_t pipeline_depth() const { return 1; }
  virtual Status start(const PackedBatch& batch) {
    (void)batch;
    return Status(ErrorCode::kUnsupported, device_name() + ": this runner does not pipeline");
  }
  virtual Status wait_almost_done() { return ok_status(); }
  virtual Status finish(std::span<const float>& rows) {
    (void)rows;
    return Status(ErrorCode::kUnsupported, device_name() + ": this runner does not pipeline");
  }

  // Tracing (LoadOptions::batch_trace): once device timing is on, each pipelined batch is
  // timestamped on the device, and after finish() device_span() is when the device began and
  // ended that batch (seconds on the device's own clock), or nullopt where it has no clock or the
  // batch was not timed. enable_device_timing() says whether the device can.
  struct DeviceSpan {
    double begin = 0, end = 0;
  };
  virtual bool enable_device_timing() { return false; }
  virtual std::optional<DeviceSpan> device_span() const { return std::nullopt; }
};

}  // namespace embd::runtime
