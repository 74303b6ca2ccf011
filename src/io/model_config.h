// A model directory's configuration: config.json plus sentence-transformers metadata
// (modules.json, 1_Pooling/config.json, sentence_bert_config.json,
// config_sentence_transformers.json), turned into one typed, validated ModelConfig.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"

namespace embd::io {

enum class Architecture : std::uint8_t { kJinaBert, kBert };
// JinaBERT v2 block layouts (JINABERT.md §3): kBase = small/base-en/de (gated_layers, mlp.wo,
// mlp.layernorm); kQkPostNorm = base-code (layer_norm_q/k, layer_norm_1/2, up_gated_layer,
// down_layer); kQkNorm = base-es (base block plus layer_norm_q/k).
enum class JinaVariant : std::uint8_t { kBase, kQkPostNorm, kQkNorm };
enum class PositionEmbedding : std::uint8_t { kAlibi, kAbsolute };
// kGeglu/kReglu: gated MLP (JinaBERT); kMlp: BERT intermediate/output with hidden_act.
enum class FeedForward : std::uint8_t { kGeglu, kReglu, kMlp };
enum class Pooling : std::uint8_t { kMean, kCls };
enum class HiddenAct : std::uint8_t { kGeluErf, kRelu };

std::string_view architecture_name(Architecture a);  // "jina_bert" | "bert"
std::string_view variant_name(JinaVariant v);        // "base" | "qk_post_norm" | "qk_norm"
std::string_view pooling_name(Pooling p);            // "mean" | "cls"

struct ModelConfig {
  Architecture architecture = Architecture::kJinaBert;
  JinaVariant variant = JinaVariant::kBase;  // meaningful for kJinaBert only
  std::string model_type;                    // config "model_type"
  std::vector<std::string> architectures;    // config "architectures"
  std::string name_or_path;                  // config "_name_or_path"

  std::int64_t hidden_size = 0;
  std::int64_t num_hidden_layers = 0;
  std::int64_t num_attention_heads = 0;
  std::int64_t intermediate_size = 0;
  std::int64_t vocab_size = 0;
  std::int64_t type_vocab_size = 0;  // 0: no token-type table (MPNet, DistilBERT)
  std::int64_t max_position_embeddings = 0;
  PositionEmbedding position_embedding = PositionEmbedding::kAlibi;
  FeedForward feed_forward = FeedForward::kGeglu;
  HiddenAct hidden_act = HiddenAct::kGeluErf;
  double layer_norm_eps = 1e-12;
  std::int64_t pad_token_id = 0;
  // Row of the position table that a sequence's first token uses: pad_token_id + 1 for
  // RoBERTa, XLM-RoBERTa and MPNet (their position ids count from padding_idx + 1), 0 for the rest.
  std::int64_t position_offset = 0;
  // MPNet: rows of encoder.relative_attention_bias, whose entry for the bucket of j - i
  // (T5's bidirectional buckets, 32 of them, exact to distance 8 and log-spaced to 128) every
  // attention score of query i and key j gets. 0 for the other families.
  std::int64_t relative_attention_num_buckets = 0;
  std::optional<DType> declared_dtype;  // "torch_dtype" or "dtype", when present and a float type

  // Pooling and output, from sentence-transformers metadata when present, else emb_pooler
  // (JinaBERT) or mean.
  Pooling pooling = Pooling::kMean;
  bool pooling_from_sentence_transformers = false;
  bool normalize = false;  // modules.json lists a Normalize module
  // Effective maximum input length in tokens (specials included): the smallest of
  // usable_positions(), sentence_bert_config.json max_seq_length and a model_max_length.
  std::int64_t max_length = 0;

  std::int64_t head_dim() const { return hidden_size / num_attention_heads; }
  // Position rows a sequence can use: those at and after position_offset (514 - 2 = 512 for
  // XLM-RoBERTa checkpoints). ALiBi models have no table; the same count bounds their length.
  std::int64_t usable_positions() const { return max_position_embeddings - position_offset; }
};

// Parses config.json text. `source` names the file in error messages. Unknown or unsupported
// values (architecture, position_embedding_type, feed_forward_type, hidden_act, non-positive or
// inconsistent sizes such as hidden_size % num_attention_heads != 0) are errors that name the
// field and the value: kUnsupported for a well-formed value embd does not run (model_type
// "deberta-v2", hidden_act "gelu_new", pooling_mode_max_tokens, a Dense module), kInvalidModel for
// malformed JSON, wrong types and out-of-range sizes. model_type "roberta", "xlm-roberta" and
// "mpnet" run as Architecture::kBert with position_offset = pad_token_id + 1; "mpnet" also has
// relative_attention_num_buckets (at least 32) and no token types. "distilbert" runs as
// Architecture::kBert from DistilBertConfig's keys (dim, n_layers, n_heads, hidden_dim,
// activation), with no token types and LayerNorm eps 1e-12.
Result<ModelConfig> parse_model_config(std::string_view json, std::string_view source);

// Reads config.json and the sentence-transformers files of a model directory.
Result<ModelConfig> load_model_config(const std::filesystem::path& dir);

}  // namespace embd::io
