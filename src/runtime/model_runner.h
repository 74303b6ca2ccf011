// ModelRunner: the BatchRunner that runs an encoder on one backend and pools its output.
//
// Owns its backend and the encoder (weights on that device), plus per-batch buffers in slots:
// the inputs (ids, positions, offsets in one device allocation, uploaded with one copy), the
// pooled rows on the device and their host copy. On an asynchronous backend (CUDA) it
// pipelines: two slots, so batch N+1 is staged and enqueued while batch N runs. With one stream
// the activations are shared, which is safe because the backend runs its work in order; on a
// backend with two streams or more, each slot has its stream and its own activations, so batch
// N+1 (enqueued once batch N starts its last layer) runs beside it and fills the SMs its kernels
// leave idle. Created and used on its executor's thread only. Batches of at most
// graph_max_tokens tokens are recorded per shape and replayed as one launch (RecordedShapes)
// where the backend can record.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "backends/backend.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "models/encoder.h"
#include "runtime/batch_runner.h"
#include "runtime/recorded_shapes.h"

namespace embd::runtime {

class ModelRunner final : public BatchRunner {
 public:
  // Pipeline slots: batches started and not yet finished.
  static constexpr std::size_t kSlots = 2;

  static Result<std::unique_ptr<ModelRunner>> create(std::unique_ptr<backend::Backend> be,
                                                     const io::ModelConfig& config,
                                                     const io::WeightSet& weights, DType dtype,
                                                     std::int64_t graph_max_tokens = 0);

  // On kOutOfMemory the batch is split in halves and retried before the error is returned.
  Status run(const PackedBatch& batch, std::vector<float>& pooled) override;
  std::size_t hidden_size() const override;
  std::string device_name() const override { return be_->name(); }
  // Batch shapes whose work is recorded for replay now.
  std::size_t recorded_shapes() const { return recorded_.recordings(); }

  // Runs one throwaway batch per size class up to max_tokens tokens: about four per power of
  // two, the classes the CUDA backend keeps GEMM plans for, through both pipeline slots, with
  // sequences up to max_seqlen. Otherwise the first batch of each new size pays for loading its
  // kernels and planning its GEMMs while the device waits: 6-12 ms per mixed4096 round on an
  // H100. Running out of device memory ends the warm-up early (larger batches are split when
  // they come); any other error is returned.
  Status warm_up(std::int64_t max_tokens, std::int64_t max_seqlen);
  // The token counts warm_up() runs, smallest first.
  static std::vector<std::int64_t> warm_up_sizes(std::int64_t max_tokens);

  // Pipelined (asynchronous backends). A start() that runs out of device memory waits for the
  // batches ahead of it and runs this one synchronously, split as run() does.
  std::size_t pipeline_depth() const override { return be_->asynchronous() ? kSlots : 1; }
  // Batches in flight at once on the device: kSlots where the backend has a stream per slot, else
  // 1 (ModelInfo::concurrent_batches).
  static std::size_t batches_at_once(const backend::Backend& be) { return be.streams() >= kSlots ? kSlots : 1; }
  Status start(const PackedBatch& batch) override;
  Status wait_almost_done() override;
  Status finish(std::span<const float>& rows) override;
  bool enable_device_timing() override;
  std::optional<DeviceSpan> device_span() const override { return span_; }

 private:
  struct Slot {
    backend::DeviceMemory inputs;      // int32 [ids T | positions T | cu_seqlens B+1]
    backend::DeviceMemory pooled;      // f32 [B, hidden]
    backend::HostMemory pooled_host;   // f32 [B, hidden]: where the rows are downloaded
    std::size_t rows = 0;
    backend::Fence almost_done = 0;    // the last layer starts
    backend::Fence done = 0;           // the rows are in pooled_host
    backend::Mark begin_mark = 0;      // device timestamps around the batch (0: not timed)
    backend::Mark end_mark = 0;
    bool ran_synchronously = false;    // start() fell back to run(): the outcome is below
    Status status;
    std::vector<float> result;
  };

  ModelRunner() = default;
  std::size_t slot_index(const Slot& slot) const { return static_cast<std::size_t>(&slot - slots_.data()); }
  Status run_split(const PackedBatch& batch, Slot& slot, std::vector<float>& pooled);
  Status run_once(const PackedBatch& batch, Slot& slot, std::vector<float>& pooled);
  // Waits for the slot's download and points at its rows in slot.pooled_host.
  Result<std::span<const float>> landed_rows(const Slot& slot);
  // Stages the inputs, enqueues the encoder, pooling and the download, and records the fences.
  Status enqueue(const PackedBatch& batch, Slot& slot);
  // The encoder and pooling into slot.pooled; in.layer_enqueued may mark progress.
  Status forward_and_pool(const models::EncoderInput& in, Slot& slot);
  // Records forward_and_pool for this shape (nothing runs yet); false when recording failed (the
  // shape then runs eagerly from now on).
  bool record(const RecordedShapes::Shape& shape, const models::EncoderInput& in, Slot& slot);
  Status stage_inputs(const PackedBatch& batch, Slot& slot, models::EncoderInput& in);
  // Sequences [begin, end) of a batch as a batch of their own.
  static PackedBatch slice(const PackedBatch& batch, std::size_t begin, std::size_t end);

  // Declaration order matters: slots and the encoder release into the backend, so they must be
  // destroyed first.
  std::unique_ptr<backend::Backend> be_;
  std::unique_ptr<models::Encoder> encoder_;
  io::Pooling pooling_ = io::Pooling::kMean;
  std::array<Slot, kSlots> slots_;
  RecordedShapes recorded_{0};  // recordings release into the backend: destroyed before it
  bool concurrent_ = false;     // a stream and a workspace per slot: batches in flight run at once
  std::uint64_t started_ = 0;   // batches started (slot of the next: started_ % kSlots)
  std::uint64_t finished_ = 0;  // batches finished (slot of the oldest: finished_ % kSlots)
  std::vector<std::int32_t> staging_;
  bool timing_ = false;                 // timestamp each pipelined batch (tracing)
  std::optional<DeviceSpan> span_;      // of the batch finish() returned last
};

}  // namespace embd::runtime
