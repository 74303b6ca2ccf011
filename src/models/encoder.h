// An encoder model (JinaBERT v2, BERT): token ids of a padding-free batch in, last hidden state
// out. Pooling is a separate step (runtime), so token-level outputs and late chunking can reuse
// the encoder.
//
// An Encoder lives on one backend and is driven by that backend's executor thread only. Its
// weights are uploaded once at load in the compute dtype; activations live in a workspace that
// grows to the largest batch seen and is then reused (no allocation on the hot path).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "backends/backend.h"
#include "io/model_config.h"
#include "io/safetensors.h"

namespace embd::models {

struct EncoderInput {
  const std::int32_t* ids = nullptr;         // device [tokens]
  const std::int32_t* positions = nullptr;   // device [tokens]: index within its sequence
  const std::int32_t* cu_seqlens = nullptr;  // device [batch + 1]
  const std::int32_t* cu_seqlens_host = nullptr;
  std::int64_t tokens = 0;
  std::int64_t batch = 0;
  std::int64_t max_seqlen = 0;
  // Which of the encoder's activation workspaces to use: batches in flight at once on different
  // streams of the backend (Backend::use_stream) each need their own.
  std::size_t workspace = 0;
  // Optional: called once each layer's work is enqueued (layer index from 0), so a runner can
  // mark progress on an asynchronous device (ModelRunner fences the start of the last layer).
  std::function<Status(int layer)> layer_enqueued;
};

class Encoder {
 public:
  virtual ~Encoder() = default;
  // The last hidden state [tokens, hidden] in dtype(); valid until the next forward().
  virtual Result<Mat> forward(const EncoderInput& input) = 0;
  virtual const io::ModelConfig& config() const = 0;
  virtual DType dtype() const = 0;
};

// Builds the encoder the config names, checking every tensor it needs (name and shape) and
// uploading the weights to `be` in `dtype`. `be` must outlive the encoder.
Result<std::unique_ptr<Encoder>> load_encoder(const io::ModelConfig& config,
                                              const io::WeightSet& weights, backend::Backend& be,
                                              DType dtype);

}  // namespace embd::models
