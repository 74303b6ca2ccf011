// JinaBERT v2 (JINABERT.md §3): ALiBi attention, post-LN blocks with a gated (GEGLU) MLP.
// Three block layouts share this file: kBase (small/base-en/de), kQkNorm (base + LayerNorm on q
// and k) and kQkPostNorm (base-code: q/k norms, a double residual and up_gated/down layers).
#include <cmath>
#include <string>
#include <vector>

#include "models/encoder.h"
#include "models/jina_bert.h"
#include "models/layers.h"

namespace embd::models {

namespace {

using io::JinaVariant;

struct JinaLayer {
  SelfAttentionWeights attn;
  LayerNormWeights q_ln, k_ln;           // kQkNorm, kQkPostNorm
  LayerNormWeights ln1, ln2;             // kQkPostNorm
  std::unique_ptr<LinearWeight> ffn_in;  // [2I, H], no bias
  std::unique_ptr<LinearWeight> ffn_out; // [H, I]
  LayerNormWeights ffn_ln;               // kBase, kQkNorm
};

enum Buffer : std::size_t { kX, kQkv, kCtx, kTmp, kFfnIn, kFfnAct, kH1, kBufferCount };

class JinaBert final : public Encoder {
 public:
  JinaBert(io::ModelConfig config, Backend& be, DType dtype)
      : config_(std::move(config)), be_(be), dtype_(dtype),
        workspaces_(be, dtype, {config_.hidden_size, 3 * config_.hidden_size, config_.hidden_size,
                                config_.hidden_size, 2 * config_.intermediate_size,
                                config_.intermediate_size, config_.hidden_size}) {}

  Status load(const io::WeightSet& w);
  Result<Mat> forward(const EncoderInput& in) override;
  const io::ModelConfig& config() const override { return config_; }
  DType dtype() const override { return dtype_; }

 private:
  Status load_layer(const io::WeightSet& w, int index);
  Status attention_block(const JinaLayer& layer, const EncoderInput& in, const Workspace& ws);
  Status mlp_block(const JinaLayer& layer, std::int64_t tokens, const Workspace& ws);
  backend::Activation ffn_activation() const {
    return config_.feed_forward == io::FeedForward::kReglu ? backend::Activation::kRelu
                                                           : backend::Activation::kGeluErf;
  }

  io::ModelConfig config_;
  Backend& be_;
  DType dtype_;
  WorkspaceSet workspaces_;
  EmbeddingWeights embeddings_;
  DeviceMemory slopes_;
  std::vector<JinaLayer> layers_;
};

Status JinaBert::load(const io::WeightSet& w) {
  EMBD_ASSIGN_OR_RETURN(embeddings_, load_embeddings(be_, w, config_, dtype_));
  const std::vector<float> slopes = ops::alibi_slopes(static_cast<int>(config_.num_attention_heads));
  EMBD_ASSIGN_OR_RETURN(slopes_, be_.allocate(slopes.size() * sizeof(float)));
  EMBD_TRY(be_.upload(slopes_.get(), slopes.data(), slopes.size() * sizeof(float)));
  layers_.resize(static_cast<std::size_t>(config_.num_hidden_layers));
  for (int l = 0; l < config_.num_hidden_layers; ++l) EMBD_TRY(load_layer(w, l));
  return ok_status();
}

Status JinaBert::load_layer(const io::WeightSet& w, int index) {
  const std::int64_t h = config_.hidden_size, inter = config_.intermediate_size;
  const std::string p = "encoder.layer." + std::to_string(index) + ".";
  JinaLayer& layer = layers_[static_cast<std::size_t>(index)];
  EMBD_ASSIGN_OR_RETURN(layer.attn, load_self_attention(be_, w, bert_attention_names(p), h, dtype_));
  if (config_.variant != JinaVariant::kBase) {
    EMBD_ASSIGN_OR_RETURN(layer.q_ln, load_layernorm(be_, w, p + "attention.self.layer_norm_q", h));
    EMBD_ASSIGN_OR_RETURN(layer.k_ln, load_layernorm(be_, w, p + "attention.self.layer_norm_k", h));
  }
  if (config_.variant == JinaVariant::kQkPostNorm) {
    EMBD_ASSIGN_OR_RETURN(layer.ln1, load_layernorm(be_, w, p + "layer_norm_1", h));
    EMBD_ASSIGN_OR_RETURN(layer.ln2, load_layernorm(be_, w, p + "layer_norm_2", h));
    EMBD_ASSIGN_OR_RETURN(layer.ffn_in, load_gated_linear(be_, w, p + "mlp.up_gated_layer", inter, h, false, dtype_));
    EMBD_ASSIGN_OR_RETURN(layer.ffn_out, load_linear(be_, w, p + "mlp.down_layer", h, inter, true, dtype_));
  } else {
    EMBD_ASSIGN_OR_RETURN(layer.ffn_in, load_gated_linear(be_, w, p + "mlp.gated_layers", inter, h, true, dtype_));
    EMBD_ASSIGN_OR_RETURN(layer.ffn_out, load_linear(be_, w, p + "mlp.wo", h, inter, true, dtype_));
    EMBD_ASSIGN_OR_RETURN(layer.ffn_ln, load_layernorm(be_, w, p + "mlp.layernorm", h));
  }
  return ok_status();
}

Status JinaBert::attention_block(const JinaLayer& layer, const EncoderInput& in, const Workspace& ws) {
  const std::int64_t t = in.tokens, h = config_.hidden_size;
  const float eps = static_cast<float>(config_.layer_norm_eps);
  const Mat x = ws.mat(kX, t), qkv = ws.mat(kQkv, t);
  const Mat ctx = ws.mat(kCtx, t), tmp = ws.mat(kTmp, t);
  if (config_.variant == JinaVariant::kBase) {
    EMBD_TRY(qkv_attention(be_, *layer.attn.qkv, config_, in, x, qkv, ctx, {slopes_.as<float>()}));
  } else {  // LayerNorm over the whole q and k vectors, so the bias goes in before it
    EMBD_TRY(ops::linear(be_, *layer.attn.qkv, x, qkv));
    EMBD_TRY(layernorm(be_, layer.q_ln, eps, qkv.columns(0, h), {}, qkv.columns(0, h)));
    EMBD_TRY(layernorm(be_, layer.k_ln, eps, qkv.columns(h, h), {}, qkv.columns(h, h)));
    EMBD_TRY(ops::attention(be_, attention_args(config_, in, qkv, ctx, {slopes_.as<float>()})));
  }
  if (config_.variant == JinaVariant::kQkPostNorm) {
    // a = LN_attn(ctx Wo + x) into h1's buffer, then h1 = LN_1(x + a) into x.
    const Mat attn = ws.mat(kH1, t);
    EMBD_TRY(linear_layernorm(be_, *layer.attn.out, ctx, tmp, layer.attn.ln, eps, x, attn));
    return layernorm(be_, layer.ln1, eps, attn, x, x);
  }
  return linear_layernorm(be_, *layer.attn.out, ctx, tmp, layer.attn.ln, eps, x, x);
}

Status JinaBert::mlp_block(const JinaLayer& layer, std::int64_t t, const Workspace& ws) {
  const float eps = static_cast<float>(config_.layer_norm_eps);
  const Mat x = ws.mat(kX, t), tmp = ws.mat(kTmp, t);
  const Mat ffn_in = ws.mat(kFfnIn, t), ffn_act = ws.mat(kFfnAct, t);
  // gated_layers activates its first half; the code model's up_gated_layer its second (set when
  // the weight was loaded).
  EMBD_TRY(ops::gated_linear(be_, {layer.ffn_in.get(), x, ffn_act, ffn_activation(), ffn_in}));
  const LayerNormWeights& ln = config_.variant == JinaVariant::kQkPostNorm ? layer.ln2 : layer.ffn_ln;
  return linear_layernorm(be_, *layer.ffn_out, ffn_act, tmp, ln, eps, x, x);
}

Result<Mat> JinaBert::forward(const EncoderInput& in) {
  EMBD_ASSIGN_OR_RETURN(const Workspace* ws, workspaces_.reserve(in.workspace, in.tokens));
  const Mat x = ws->mat(kX, in.tokens);
  EMBD_TRY(embed(be_, embeddings_, config_, dtype_, in, x));
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    EMBD_TRY(attention_block(layers_[l], in, *ws));
    EMBD_TRY(mlp_block(layers_[l], in.tokens, *ws));
    if (in.layer_enqueued) EMBD_TRY(in.layer_enqueued(static_cast<int>(l)));
  }
  return x;
}

// The tensors decide the block layout; the config's hint only names what is expected.
JinaVariant detect_variant(const io::ModelConfig& c, const io::WeightSet& w) {
  if (w.find("encoder.layer.0.mlp.up_gated_layer.weight")) return JinaVariant::kQkPostNorm;
  if (w.find("encoder.layer.0.attention.self.layer_norm_q.weight")) return JinaVariant::kQkNorm;
  if (w.find("encoder.layer.0.mlp.gated_layers.weight")) return JinaVariant::kBase;
  return c.variant;
}

}  // namespace

Result<std::unique_ptr<Encoder>> load_jina_bert(const io::ModelConfig& config,
                                                const io::WeightSet& weights, Backend& be,
                                                DType dtype) {
  io::ModelConfig c = config;
  c.variant = detect_variant(config, weights);
  auto model = std::make_unique<JinaBert>(std::move(c), be, dtype);
  EMBD_TRY(model->load(weights));
  return std::unique_ptr<Encoder>(std::move(model));
}

}  // namespace embd::models
