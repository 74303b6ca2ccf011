#include "runtime/recorded_shapes.h"

#include "core/status.h"

namespace embd::runtime {

RecordedShapes::Action RecordedShapes::plan(const Shape& shape, std::uint64_t memory_generation) {
  if (shape.tokens > max_tokens_) return Action::kRunEagerly;
  if (memory_generation != generation_) {
    // Buffers moved: every recording may point at freed memory, and a shape seen before may now
    // allocate on its next run, so start over.
    entries_.clear();
    generation_ = memory_generation;
  }
  auto it = entries_.find(shape);
  if (it == entries_.end()) {
    if (entries_.size() >= capacity_) entries_.clear();
    entries_.emplace(shape, Entry{});
    return Action::kRunEagerly;
  }
  if (it->second.refused) return Action::kRunEagerly;
  return it->second.recording ? Action::kReplay : Action::kRecord;
}

const backend::Recording& RecordedShapes::recording(const Shape& shape) const {
  const auto it = entries_.find(shape);
  EMBD_CHECK(it != entries_.end() && it->second.recording);
  return *it->second.recording;
}

void RecordedShapes::store(const Shape& shape, std::unique_ptr<backend::Recording> recording) {
  Entry& e = entries_[shape];
  e.refused = recording == nullptr;
  e.recording = std::move(recording);
}

std::size_t RecordedShapes::recordings() const {
  std::size_t n = 0;
  for (const auto& [shape, e] : entries_) n += e.recording ? 1 : 0;
  return n;
}

}  // namespace embd::runtime
