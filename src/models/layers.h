// Building blocks shared by the encoder families: weight loading (with shape checks that name
// the tensor) and the activation workspace. The forward math lives in each family's file.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "io/safetensors.h"
#include "models/encoder.h"
#include "ops/ops.h"

namespace embd::models {

using backend::Backend;
using backend::DeviceMemory;
using backend::LinearWeight;

// LayerNorm gamma/beta, uploaded in F32.
struct LayerNormWeights {
  DeviceMemory gamma;
  DeviceMemory beta;
};

// "<prefix>.weight" and "<prefix>.bias", each [dim].
Result<LayerNormWeights> load_layernorm(Backend& be, const io::WeightSet& w,
                                        const std::string& prefix, std::int64_t dim);

// "<prefix>.weight" [out, in] and, when with_bias, "<prefix>.bias" [out].
Result<std::unique_ptr<LinearWeight>> load_linear(Backend& be, const io::WeightSet& w,
                                                  const std::string& prefix, std::int64_t out,
                                                  std::int64_t in, bool with_bias, DType dtype);

// A gated MLP's input projection "<prefix>.weight" [2I, in] (no bias) for ops::gated_linear;
// activate_first_half says which half of its outputs the GLU activates.
Result<std::unique_ptr<LinearWeight>> load_gated_linear(Backend& be, const io::WeightSet& w,
                                                        const std::string& prefix, std::int64_t inner,
                                                        std::int64_t in, bool activate_first_half,
                                                        DType dtype);

// Several Linear layers with the same input fused into one (rows stacked in the given order),
// e.g. query/key/value into one [3H, H] projection. All have biases.
Result<std::unique_ptr<LinearWeight>> load_fused_linear(Backend& be, const io::WeightSet& w,
                                                        const std::vector<std::string>& prefixes,
                                                        std::int64_t out_each, std::int64_t in,
                                                        DType dtype);

// A [rows, cols] table (embeddings) in `dtype`.
Result<DeviceMemory> load_table(Backend& be, const io::WeightSet& w, const std::string& name,
                                std::int64_t rows, std::int64_t cols, DType dtype);

// out = LayerNorm(x + residual) with these weights; residual.data may be null.
Status layernorm(Backend& be, const LayerNormWeights& ln, float eps, const Mat& x,
                 const Mat& residual, const Mat& out);

// out = LayerNorm(in W^T + b + residual) (ops::linear_layernorm): one kernel where the backend
// fuses it, else through `tmp` ([T, out_features]), b added inside the LayerNorm where the backend
// would add it in a pass of its own.
Status linear_layernorm(Backend& be, const LinearWeight& w, const Mat& in, const Mat& tmp,
                        const LayerNormWeights& ln, float eps, const Mat& residual, const Mat& out);

// A BERT self-attention block's weights: fused query/key/value [3H, H], the output projection
// and the post-attention LayerNorm.
struct SelfAttentionWeights {
  std::unique_ptr<LinearWeight> qkv;
  std::unique_ptr<LinearWeight> out;
  LayerNormWeights ln;
};

// Where a family stores a self-attention block's tensors, as prefixes of "<name>.weight" /
// "<name>.bias".
struct SelfAttentionNames {
  std::string query, key, value, output, layernorm;
};
// BERT's "<layer_prefix>attention.self.{query,key,value}", "...attention.output.{dense,LayerNorm}".
SelfAttentionNames bert_attention_names(const std::string& layer_prefix);

Result<SelfAttentionWeights> load_self_attention(Backend& be, const io::WeightSet& w,
                                                 const SelfAttentionNames& names,
                                                 std::int64_t hidden, DType dtype);

// The embedding block: word (+ position) + token-type rows, then LayerNorm.
struct EmbeddingWeights {
  DeviceMemory word;      // [vocab_size, H]
  DeviceMemory type;      // [type_vocab_size, H]; empty when the model has no token types
  DeviceMemory position;  // [max_position_embeddings, H]; empty for ALiBi models
  LayerNormWeights ln;
};

// Loads "embeddings.*" (word rows = config vocab_size; the engine checks ids against it; no
// token_type_embeddings when type_vocab_size is 0).
Result<EmbeddingWeights> load_embeddings(Backend& be, const io::WeightSet& w,
                                         const io::ModelConfig& config, DType dtype);
// out [tokens, H] = LayerNorm(word[id] (+ type[0]) (+ position[position_offset + pos])).
Status embed(Backend& be, const EmbeddingWeights& e, const io::ModelConfig& config, DType dtype,
             const EncoderInput& in, const Mat& out);

// How attention biases scores by position, on the backend's device: ALiBi slopes [heads], a
// relative-position table (AttentionArgs::relative_bias), or neither.
struct PositionBias {
  const float* alibi_slopes = nullptr;
  const float* relative = nullptr;
  int relative_reach = 0;
};

// Attention arguments for one layer: the config's heads, scale 1/sqrt(head_dim), and the
// position bias.
backend::AttentionArgs attention_args(const io::ModelConfig& config, const EncoderInput& in,
                                      const Mat& qkv, const Mat& out, const PositionBias& bias);

// qkv = x Wqkv^T + b, then self-attention into `out` (no LayerNorm over q or k in between).
// Where the backend would add b in a pass of its own, attention adds its Q and V parts instead
// (AttentionArgs::q_bias / v_bias) and its K part cancels in the softmax.
Status qkv_attention(Backend& be, const LinearWeight& wqkv, const io::ModelConfig& config,
                     const EncoderInput& in, const Mat& x, const Mat& qkv, const Mat& out,
                     const PositionBias& bias);

// Named activation buffers of `tokens` rows, regrown only when a batch is larger than any before.
class Workspace {
 public:
  // widths: columns of each buffer, in elements of `dtype`.
  Workspace(Backend& be, DType dtype, std::vector<std::int64_t> widths)
      : be_(be), dtype_(dtype), widths_(std::move(widths)), buffers_(widths_.size()) {}
  Status reserve(std::int64_t tokens);
  // Buffer i as a [tokens, widths[i]] matrix (tokens <= reserved).
  Mat mat(std::size_t i, std::int64_t tokens) const;

 private:
  Status allocate_all(std::int64_t tokens);

  Backend& be_;
  DType dtype_;
  std::vector<std::int64_t> widths_;
  std::vector<DeviceMemory> buffers_;
  std::int64_t capacity_ = 0;
};

// One Workspace per concurrent stream of batches (EncoderInput::workspace), made on first use:
// batches in flight at the same time must not share activations.
class WorkspaceSet {
 public:
  static constexpr std::size_t kMaxWorkspaces = 8;
  WorkspaceSet(Backend& be, DType dtype, std::vector<std::int64_t> widths)
      : be_(be), dtype_(dtype), widths_(std::move(widths)) {}
  // Workspace `index`, reserved for `tokens` rows.
  Result<const Workspace*> reserve(std::size_t index, std::int64_t tokens);

 private:
  Backend& be_;
  DType dtype_;
  std::vector<std::int64_t> widths_;
  std::deque<Workspace> workspaces_;  // a deque: growing it moves none of them
};

}  // namespace embd::models
