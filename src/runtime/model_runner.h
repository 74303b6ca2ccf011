// ModelRunner: the BatchRunner that runs an encoder on one backend and pools its output.
//
// Owns its backend and the encoder (weights on that device), plus the per-batch input buffers
// (ids, positions, offsets in one device allocation, uploaded with one copy) and the pooled
// output. Created and used on its executor's thread only.
#pragma once

#include <memory>
#include <vector>

#include "backends/backend.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "models/encoder.h"
#include "runtime/batch_runner.h"

namespace embd::runtime {

class ModelRunner final : public BatchRunner {
 public:
  static Result<std::unique_ptr<ModelRunner>> create(std::unique_ptr<backend::Backend> be,
                                                     const io::ModelConfig& config,
                                                     const io::WeightSet& weights, DType dtype);

  // On kOutOfMemory the batch is split in halves and retried before the error is returned.
  Status run(const PackedBatch& batch, std::vector<float>& pooled) override;
  std::size_t hidden_size() const override;
  std::string device_name() const override { return be_->name(); }

 private:
  ModelRunner() = default;
  Status run_once(const PackedBatch& batch, std::vector<float>& pooled);
  Status stage_inputs(const PackedBatch& batch, models::EncoderInput& in);
  // Sequences [begin, end) of a batch as a batch of their own.
  static PackedBatch slice(const PackedBatch& batch, std::size_t begin, std::size_t end);

  // Declaration order matters: buffers and the encoder release into the backend, so they
  // must be destroyed first.
  std::unique_ptr<backend::Backend> be_;
  std::unique_ptr<models::Encoder> encoder_;
  io::Pooling pooling_ = io::Pooling::kMean;
  backend::DeviceMemory inputs_;  // int32 [ids T | positions T | cu_seqlens B+1]
  backend::DeviceMemory pooled_;  // f32 [B, hidden]
  std::vector<std::int32_t> staging_;
};

}  // namespace embd::runtime
