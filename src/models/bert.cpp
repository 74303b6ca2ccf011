// Plain BERT (all-MiniLM / bge-small layouts), (XLM-)RoBERTa (the same encoder, its position
// rows offset by pad_token_id + 1), MPNet (offset positions too, no token types, other tensor
// names, and a bucketed relative-position bias shared by every layer's attention) and DistilBERT
// (no token types, other tensor names): absolute position embeddings, post-LN blocks, a Linear +
// activation + Linear MLP.
#include <cmath>
#include <string>
#include <vector>

#include "models/bert.h"
#include "models/layers.h"
#include "models/relative_position.h"

namespace embd::models {

namespace {

struct BertLayer {
  SelfAttentionWeights attn;
  std::unique_ptr<LinearWeight> intermediate;
  std::unique_ptr<LinearWeight> output;
  LayerNormWeights output_ln;
};

enum Buffer : std::size_t { kX, kQkv, kCtx, kTmp, kInter };

// Where a family stores one layer's tensors.
struct LayerNames {
  SelfAttentionNames attention;
  std::string intermediate, output, output_ln;  // MLP in, MLP out, the block's last LayerNorm
};

LayerNames layer_names(const io::ModelConfig& c, int index) {
  const std::string i = std::to_string(index);
  if (c.model_type == "distilbert") {
    const std::string p = "transformer.layer." + i + ".";
    return {{p + "attention.q_lin", p + "attention.k_lin", p + "attention.v_lin", p + "attention.out_lin",
             p + "sa_layer_norm"},
            p + "ffn.lin1", p + "ffn.lin2", p + "output_layer_norm"};
  }
  const std::string p = "encoder.layer." + i + ".";
  SelfAttentionNames attention = bert_attention_names(p);
  if (c.model_type == "mpnet") {
    attention = {p + "attention.attn.q", p + "attention.attn.k", p + "attention.attn.v", p + "attention.attn.o",
                 p + "attention.LayerNorm"};
  }
  return {attention, p + "intermediate.dense", p + "output.dense", p + "output.LayerNorm"};
}

class Bert final : public Encoder {
 public:
  Bert(io::ModelConfig config, Backend& be, DType dtype)
      : config_(std::move(config)), be_(be), dtype_(dtype),
        workspaces_(be, dtype, {config_.hidden_size, 3 * config_.hidden_size, config_.hidden_size,
                                config_.hidden_size, config_.intermediate_size}) {}

  Status load(const io::WeightSet& w);
  Result<Mat> forward(const EncoderInput& in) override;
  const io::ModelConfig& config() const override { return config_; }
  DType dtype() const override { return dtype_; }

 private:
  Status load_layer(const io::WeightSet& w, int index);
  Status layer_forward(const BertLayer& layer, const EncoderInput& in, const Workspace& ws);

  Status load_relative_bias(const io::WeightSet& w);

  io::ModelConfig config_;
  Backend& be_;
  DType dtype_;
  WorkspaceSet workspaces_;
  EmbeddingWeights embeddings_;
  DeviceMemory relative_bias_;  // MPNet: F32 [heads][2 kRelativeMaxDistance + 1]
  PositionBias position_bias_;
  std::vector<BertLayer> layers_;
};

// MPNet's encoder.relative_attention_bias [buckets, heads], laid out by distance for the kernels.
Status Bert::load_relative_bias(const io::WeightSet& w) {
  const std::int64_t heads = config_.num_attention_heads;
  EMBD_ASSIGN_OR_RETURN(const HostTensor* t, w.require("encoder.relative_attention_bias.weight",
                                                       {config_.relative_attention_num_buckets, heads}));
  std::vector<float> weight(static_cast<std::size_t>(t->numel()));
  convert(t->data, t->dtype, weight.data(), DType::kF32, weight.size());
  const std::vector<float> table = relative_bias_table(weight, static_cast<int>(heads));
  EMBD_ASSIGN_OR_RETURN(relative_bias_, be_.allocate(table.size() * sizeof(float)));
  EMBD_TRY(be_.upload(relative_bias_.get(), table.data(), table.size() * sizeof(float)));
  position_bias_.relative = relative_bias_.as<float>();
  position_bias_.relative_reach = kRelativeMaxDistance;
  return ok_status();
}

Status Bert::load(const io::WeightSet& w) {
  EMBD_ASSIGN_OR_RETURN(embeddings_, load_embeddings(be_, w, config_, dtype_));
  if (config_.relative_attention_num_buckets > 0) EMBD_TRY(load_relative_bias(w));
  layers_.resize(static_cast<std::size_t>(config_.num_hidden_layers));
  for (int l = 0; l < config_.num_hidden_layers; ++l) EMBD_TRY(load_layer(w, l));
  return ok_status();
}

Status Bert::load_layer(const io::WeightSet& w, int index) {
  const std::int64_t h = config_.hidden_size, inter = config_.intermediate_size;
  const LayerNames n = layer_names(config_, index);
  BertLayer& layer = layers_[static_cast<std::size_t>(index)];
  EMBD_ASSIGN_OR_RETURN(layer.attn, load_self_attention(be_, w, n.attention, h, dtype_));
  EMBD_ASSIGN_OR_RETURN(layer.intermediate, load_linear(be_, w, n.intermediate, inter, h, true, dtype_));
  EMBD_ASSIGN_OR_RETURN(layer.output, load_linear(be_, w, n.output, h, inter, true, dtype_));
  EMBD_ASSIGN_OR_RETURN(layer.output_ln, load_layernorm(be_, w, n.output_ln, h));
  return ok_status();
}

Status Bert::layer_forward(const BertLayer& layer, const EncoderInput& in, const Workspace& ws) {
  const std::int64_t t = in.tokens;
  const float eps = static_cast<float>(config_.layer_norm_eps);
  const Mat x = ws.mat(kX, t), qkv = ws.mat(kQkv, t);
  const Mat ctx = ws.mat(kCtx, t), tmp = ws.mat(kTmp, t);
  const Mat inter = ws.mat(kInter, t);
  EMBD_TRY(qkv_attention(be_, *layer.attn.qkv, config_, in, x, qkv, ctx, position_bias_));
  EMBD_TRY(linear_layernorm(be_, *layer.attn.out, ctx, tmp, layer.attn.ln, eps, x, x));
  const auto act = config_.hidden_act == io::HiddenAct::kRelu ? backend::Activation::kRelu
                                                              : backend::Activation::kGeluErf;
  EMBD_TRY(ops::linear(be_, *layer.intermediate, x, inter, act));
  return linear_layernorm(be_, *layer.output, inter, tmp, layer.output_ln, eps, x, x);
}

Result<Mat> Bert::forward(const EncoderInput& in) {
  if (in.max_seqlen > config_.usable_positions()) {
    std::string what = std::to_string(config_.usable_positions()) + " position embeddings";
    if (config_.position_offset > 0) {
      what += " (max_position_embeddings " + std::to_string(config_.max_position_embeddings) +
              " less the first " + std::to_string(config_.position_offset) + ", pad_token_id + 1)";
    }
    return Status(ErrorCode::kInputTooLong,
                  "a sequence of " + std::to_string(in.max_seqlen) + " tokens exceeds the " + what);
  }
  EMBD_ASSIGN_OR_RETURN(const Workspace* ws, workspaces_.reserve(in.workspace, in.tokens));
  const Mat x = ws->mat(kX, in.tokens);
  EMBD_TRY(embed(be_, embeddings_, config_, dtype_, in, x));
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    EMBD_TRY(layer_forward(layers_[l], in, *ws));
    if (in.layer_enqueued) EMBD_TRY(in.layer_enqueued(static_cast<int>(l)));
  }
  return x;
}

}  // namespace

Result<std::unique_ptr<Encoder>> load_bert(const io::ModelConfig& config,
                                           const io::WeightSet& weights, Backend& be, DType dtype) {
  auto model = std::make_unique<Bert>(config, be, dtype);
  EMBD_TRY(model->load(weights));
  return std::unique_ptr<Encoder>(std::move(model));
}

}  // namespace embd::models
