#include "models/layers.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace embd::models {

namespace {

// Widens a host tensor to F32 (exact for F16 and BF16).
std::vector<float> to_f32(const HostTensor& t) {
  std::vector<float> out(static_cast<std::size_t>(t.numel()));
  convert(t.data, t.dtype, out.data(), DType::kF32, out.size());
  return out;
}

HostTensor f32_view(const std::string& name, std::vector<std::int64_t> shape, const std::vector<float>& data) {
  HostTensor t;
  t.name = name;
  t.dtype = DType::kF32;
  t.shape = std::move(shape);
  t.data = data.data();
  return t;
}

}  // namespace

Result<LayerNormWeights> load_layernorm(Backend& be, const io::WeightSet& w,
                                        const std::string& prefix, std::int64_t dim) {
  EMBD_ASSIGN_OR_RETURN(const HostTensor* gamma, w.require(prefix + ".weight", {dim}));
  EMBD_ASSIGN_OR_RETURN(const HostTensor* beta, w.require(prefix + ".bias", {dim}));
  LayerNormWeights ln;
  EMBD_ASSIGN_OR_RETURN(ln.gamma, be.upload_tensor(*gamma, DType::kF32));
  EMBD_ASSIGN_OR_RETURN(ln.beta, be.upload_tensor(*beta, DType::kF32));
  return ln;
}

Result<std::unique_ptr<LinearWeight>> load_linear(Backend& be, const io::WeightSet& w,
                                                  const std::string& prefix, std::int64_t out,
                                                  std::int64_t in, bool with_bias, DType dtype) {
  EMBD_ASSIGN_OR_RETURN(const HostTensor* weight, w.require(prefix + ".weight", {out, in}));
  const HostTensor* bias = nullptr;
  if (with_bias) {
    EMBD_ASSIGN_OR_RETURN(bias, w.require(prefix + ".bias", {out}));
  }
  return be.prepare_linear(*weight, bias, dtype);
}

Result<std::unique_ptr<LinearWeight>> load_gated_linear(Backend& be, const io::WeightSet& w,
                                                        const std::string& prefix, std::int64_t inner,
                                                        std::int64_t in, bool activate_first_half,
                                                        DType dtype) {
  EMBD_ASSIGN_OR_RETURN(const HostTensor* weight, w.require(prefix + ".weight", {2 * inner, in}));
  return be.prepare_gated_linear(*weight, activate_first_half, dtype);
}

Result<std::unique_ptr<LinearWeight>> load_fused_linear(Backend& be, const io::WeightSet& w,
                                                        const std::vector<std::string>& prefixes,
                                                        std::int64_t out_each, std::int64_t in,
                                                        DType dtype) {
  std::vector<float> weight, bias;
  weight.reserve(prefixes.size() * static_cast<std::size_t>(out_each * in));
  for (const auto& prefix : prefixes) {
    EMBD_ASSIGN_OR_RETURN(const HostTensor* wt, w.require(prefix + ".weight", {out_each, in}));
    EMBD_ASSIGN_OR_RETURN(const HostTensor* bt, w.require(prefix + ".bias", {out_each}));
    const auto wf = to_f32(*wt);
    const auto bf = to_f32(*bt);
    weight.insert(weight.end(), wf.begin(), wf.end());
    bias.insert(bias.end(), bf.begin(), bf.end());
  }
  const auto rows = static_cast<std::int64_t>(prefixes.size()) * out_each;
  const HostTensor wt = f32_view(prefixes.front() + "+fused.weight", {rows, in}, weight);
  const HostTensor bt = f32_view(prefixes.front() + "+fused.bias", {rows}, bias);
  return be.prepare_linear(wt, &bt, dtype);
}

Result<DeviceMemory> load_table(Backend& be, const io::WeightSet& w, const std::string& name,
                                std::int64_t rows, std::int64_t cols, DType dtype) {
  EMBD_ASSIGN_OR_RETURN(const HostTensor* t, w.require(name, {rows, cols}));
  return be.upload_tensor(*t, dtype);
}

SelfAttentionNames bert_attention_names(const std::string& p) {
  return {p + "attention.self.query", p + "attention.self.key", p + "attention.self.value",
          p + "attention.output.dense", p + "attention.output.LayerNorm"};
}

Result<SelfAttentionWeights> load_self_attention(Backend& be, const io::WeightSet& w,
                                                 const SelfAttentionNames& n, std::int64_t h, DType dtype) {
  SelfAttentionWeights a;
  EMBD_ASSIGN_OR_RETURN(a.qkv, load_fused_linear(be, w, {n.query, n.key, n.value}, h, h, dtype));
  EMBD_ASSIGN_OR_RETURN(a.out, load_linear(be, w, n.output, h, h, true, dtype));
  EMBD_ASSIGN_OR_RETURN(a.ln, load_layernorm(be, w, n.layernorm, h));
  return a;
}

Result<EmbeddingWeights> load_embeddings(Backend& be, const io::WeightSet& w,
                                         const io::ModelConfig& c, DType dtype) {
  const std::int64_t h = c.hidden_size;
  EmbeddingWeights e;
  EMBD_ASSIGN_OR_RETURN(e.word, load_table(be, w, "embeddings.word_embeddings.weight", c.vocab_size, h, dtype));
  if (c.type_vocab_size > 0) {
    EMBD_ASSIGN_OR_RETURN(e.type, load_table(be, w, "embeddings.token_type_embeddings.weight",
                                             c.type_vocab_size, h, dtype));
  }
  if (c.position_embedding == io::PositionEmbedding::kAbsolute) {
    EMBD_ASSIGN_OR_RETURN(e.position, load_table(be, w, "embeddings.position_embeddings.weight",
                                                 c.max_position_embeddings, h, dtype));
  }
  EMBD_ASSIGN_OR_RETURN(e.ln, load_layernorm(be, w, "embeddings.LayerNorm", h));
  return e;
}

Status embed(Backend& be, const EmbeddingWeights& e, const io::ModelConfig& c, DType dtype,
             const EncoderInput& in, const Mat& out) {
  backend::EmbedLayerNormArgs a;
  a.ids = in.ids;
  a.tokens = in.tokens;
  a.word_table = Mat::of(e.word.get(), dtype, c.vocab_size, c.hidden_size);
  if (e.type.get()) a.type_table = Mat::of(e.type.get(), dtype, c.type_vocab_size, c.hidden_size);
  if (e.position.get()) {
    a.positions = in.positions;
    // Positions count from 0 within a sequence; a model whose first token uses a later row
    // (XLM-RoBERTa) gets a view of the table from that row on. Both backends index the view's
    // pointer by position * ld, so it is a plain device address either way.
    a.position_table = Mat::of(e.position.get(), dtype, c.max_position_embeddings, c.hidden_size)
                           .row_range(c.position_offset, c.usable_positions());
  }
  a.gamma = e.ln.gamma.as<float>();
  a.beta = e.ln.beta.as<float>();
  a.eps = static_cast<float>(c.layer_norm_eps);
  a.out = out;
  return ops::embed_layernorm(be, a);
}

backend::AttentionArgs attention_args(const io::ModelConfig& c, const EncoderInput& in,
                                      const Mat& qkv, const Mat& out, const PositionBias& bias) {
  backend::AttentionArgs a;
  a.qkv = qkv;
  a.out = out;
  a.cu_seqlens = in.cu_seqlens;
  a.cu_seqlens_host = in.cu_seqlens_host;
  a.batch = in.batch;
  a.max_seqlen = in.max_seqlen;
  a.num_heads = static_cast<int>(c.num_attention_heads);
  a.head_dim = static_cast<int>(c.head_dim());
  a.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim()));
  a.alibi_slopes = bias.alibi_slopes;
  a.relative_bias = bias.relative;
  a.relative_reach = bias.relative_reach;
  return a;
}

namespace {

// Whether the caller should leave w's bias out of linear() and add it itself (see
// Backend::defers_linear_bias).
bool defer_bias(const Backend& be, const LinearWeight& w) {
  return w.has_bias && be.defers_linear_bias(w);
}

}  // namespace

Status qkv_attention(Backend& be, const LinearWeight& wqkv, const io::ModelConfig& config,
                     const EncoderInput& in, const Mat& x, const Mat& qkv, const Mat& out,
                     const PositionBias& bias) {
  const bool fold = defer_bias(be, wqkv);
  EMBD_TRY(ops::linear(be, wqkv, x, qkv, backend::Activation::kNone, fold));
  backend::AttentionArgs a = attention_args(config, in, qkv, out, bias);
  if (fold) {
    a.q_bias = wqkv.bias_f32;
    a.v_bias = wqkv.bias_f32 + 2 * config.hidden_size;
  }
  return ops::attention(be, a);
}

Status layernorm(Backend& be, const LayerNormWeights& ln, float eps, const Mat& x,
                 const Mat& residual, const Mat& out) {
  backend::AddLayerNormArgs args;
  args.x = x;
  args.residual = residual;
  args.gamma = ln.gamma.as<float>();
  args.beta = ln.beta.as<float>();
  args.eps = eps;
  args.out = out;
  return ops::add_layernorm(be, args);
}

Status linear_layernorm(Backend& be, const LinearWeight& w, const Mat& in, const Mat& tmp,
                        const LayerNormWeights& ln, float eps, const Mat& residual, const Mat& out) {
  backend::LinearLayerNormArgs args;
  args.weight = &w;
  args.x = in;
  args.residual = residual;
  args.gamma = ln.gamma.as<float>();
  args.beta = ln.beta.as<float>();
  args.eps = eps;
  args.out = out;
  args.scratch = tmp;
  return ops::linear_layernorm(be, args);
}

Status Workspace::reserve(std::int64_t tokens) {
  if (tokens <= capacity_) return ok_status();
  // Grow geometrically so a slowly rising batch size reallocates rarely; if that much does not
  // fit, try exactly what this batch needs.
  const std::int64_t generous = std::max(tokens, capacity_ + capacity_ / 2);
  Status s = allocate_all(generous);
  if (s.code() == ErrorCode::kOutOfMemory && generous > tokens) s = allocate_all(tokens);
  return s;
}

Status Workspace::allocate_all(std::int64_t tokens) {
  // Free everything first (room for the new buffers); on failure the workspace stays empty so
  // the next reserve() starts over instead of handing out a missing buffer.
  for (auto& b : buffers_) b.reset();
  capacity_ = 0;
  for (std::size_t i = 0; i < widths_.size(); ++i) {
    const auto bytes = static_cast<std::size_t>(tokens * widths_[i]) * dtype_size(dtype_);
    auto mem = be_.allocate(bytes);
    if (!mem.ok()) {
      for (auto& b : buffers_) b.reset();
      return mem.status().with_context("activations for " + std::to_string(tokens) + " tokens");
    }
    buffers_[i] = std::move(mem).value();
  }
  capacity_ = tokens;
  return ok_status();
}

Result<const Workspace*> WorkspaceSet::reserve(std::size_t index, std::int64_t tokens) {
  if (index >= kMaxWorkspaces) {
    return invalid_argument("activation workspace " + std::to_string(index) + " (at most " +
                            std::to_string(kMaxWorkspaces) + ")");
  }
  while (workspaces_.size() <= index) workspaces_.emplace_back(be_, dtype_, widths_);
  Workspace& ws = workspaces_[index];
  EMBD_TRY(ws.reserve(tokens));
  return &ws;
}

Mat Workspace::mat(std::size_t i, std::int64_t tokens) const {
  EMBD_CHECK(i < buffers_.size() && tokens <= capacity_);
  return Mat::of(buffers_[i].get(), dtype_, tokens, widths_[i]);
}

}  // namespace embd::models
