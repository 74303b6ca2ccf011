// RecordedShapes: which device batches a ModelRunner replays as recorded work (CUDA graphs).
//
// Small batches spend more time launching kernels than running them, so their work (encoder and
// pooling) is recorded once per batch shape and then replayed as one launch. A shape is a
// pipeline slot (its input and output buffers) plus tokens, sequences and the longest sequence:
// everything the launches depend on, while ids and offsets are read from device memory when the
// work runs. A shape is recorded the second time it is seen, since the first (eager) run sizes
// every buffer and picks every GEMM plan; recordings are dropped whenever the backend's device
// memory changes (a buffer grew, so recorded pointers may be stale). Not thread-safe: one
// runner's thread uses it.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>

#include "backends/backend.h"

namespace embd::runtime {

class RecordedShapes {
 public:
  struct Shape {
    std::size_t slot = 0;
    std::int64_t tokens = 0;
    std::int64_t batch = 0;
    std::int64_t max_seqlen = 0;
    auto operator<=>(const Shape&) const = default;
  };
  enum class Action { kRunEagerly, kRecord, kReplay };

  // Batches of at most max_tokens tokens are recorded (0: none); at most `capacity` recordings
  // are kept (all are dropped when that many exist).
  explicit RecordedShapes(std::int64_t max_tokens, std::size_t capacity = 256)
      : max_tokens_(max_tokens), capacity_(capacity) {}

  // What to do with a batch of this shape now, given the backend's memory_generation().
  Action plan(const Shape& shape, std::uint64_t memory_generation);
  // The recording to replay after plan() said kReplay.
  const backend::Recording& recording(const Shape& shape) const;
  // After plan() said kRecord: the recording, or null when recording failed (the shape then
  // always runs eagerly).
  void store(const Shape& shape, std::unique_ptr<backend::Recording> recording);

  std::size_t recordings() const;

 private:
  struct Entry {
    bool refused = false;  // recording failed once: eager for good
    std::unique_ptr<backend::Recording> recording;
  };
  std::int64_t max_tokens_;
  std::size_t capacity_;
  std::uint64_t generation_ = 0;
  std::map<Shape, Entry> entries_;  // present = seen once
};

}  // namespace embd::runtime
