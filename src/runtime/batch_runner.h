// BatchRunner: runs one PackedBatch on one device and returns a pooled embedding per sequence.
//
// One runner per device. It is created by the factory an Executor calls on its own thread and is
// used and destroyed only on that thread, so an implementation may keep thread-affine device
// state (CUDA context, streams, handles, workspace) without locking. Errors are returned as a
// Status (never thrown); the scheduler fails exactly the requests of that batch with it and the
// executor goes on with the next batch.
#pragma once

#include <cstddef>
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
};

}  // namespace embd::runtime
