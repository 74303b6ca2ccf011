// config.json -> ModelConfig: architecture detection (JinaBERT v2 variants, plain BERT,
// RoBERTa and XLM-RoBERTa as BERT with offset positions, MPNet as BERT with offset positions and a
// relative-position bias, DistilBERT as BERT under other names) and validation of every field
// inference uses.
#include "io/model_config.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "io/config_json.h"

namespace embd::io {
namespace {

using nlohmann::json;

// RoBERTa, XLM-RoBERTa and MPNet: BERT's encoder with positions counted from pad_token_id + 1.
bool positions_follow_padding(std::string_view model_type) {
  return model_type == "xlm-roberta" || model_type == "roberta" || model_type == "mpnet";
}

// transformers' MPNet buckets j - i into this many buckets whatever relative_attention_num_buckets
// says (MPNetEncoder.compute_position_bias's default); the table has that many rows or more.
constexpr std::int64_t kMpnetBuckets = 32;

// DistilBertConfig names its sizes and activation differently (transformers maps hidden_size to
// dim, ...): the key a field has in this model_type's config.json.
const char* key(const ModelConfig& c, const char* bert_name) {
  if (c.model_type != "distilbert") return bert_name;
  const std::string_view n = bert_name;
  if (n == "hidden_size") return "dim";
  if (n == "num_hidden_layers") return "n_layers";
  if (n == "num_attention_heads") return "n_heads";
  if (n == "intermediate_size") return "hidden_dim";
  if (n == "hidden_act") return "activation";
  return bert_name;
}

// The families that always run BERT's encoder (never JinaBERT's), each with classes of its own.
bool is_bert_variant(std::string_view model_type) {
  return positions_follow_padding(model_type) || model_type == "distilbert";
}

bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

// Which remote-code implementation a string (auto_map value, _name_or_path) refers to.
std::optional<JinaVariant> variant_from(const std::string& s) {
  if (contains(s, "qk-post-norm")) return JinaVariant::kQkPostNorm;
  if (contains(s, "qk-devlin-norm")) return JinaVariant::kQkNorm;
  if (contains(s, "jina-bert-implementation")) return JinaVariant::kBase;
  return std::nullopt;
}

struct JinaHints {
  bool any = false;                    // something names a JinaBERT implementation
  std::optional<JinaVariant> variant;  // the implementation, when recognised
  std::string unknown;                 // an auto_map value naming an unknown jina-bert code
};

// auto_map names the code that runs the model, so it decides; _name_or_path is a fallback
// (base-de's is "jina-bert-base-de-en-bpe-61k" while its auto_map names the base code).
Result<JinaHints> jina_hints(const ConfigReader& r, const ModelConfig& c) {
  JinaHints h;
  if (const json* auto_map = r.find("auto_map")) {
    if (!auto_map->is_object()) return r.error("auto_map", "must be an object");
    for (const auto& [key, value] : auto_map->items()) {
      if (!value.is_string()) continue;
      const auto& s = value.get_ref<const std::string&>();
      if (!contains(s, "jina-bert") && !contains(s, "JinaBert")) continue;
      h.any = true;
      if (auto v = variant_from(s)) {
        h.variant = v;
      } else if (h.unknown.empty()) {
        h.unknown = s;
      }
    }
  }
  if (!h.variant && h.unknown.empty() && contains(c.name_or_path, "jina-bert")) {
    h.any = true;
    h.variant = variant_from(c.name_or_path);
  }
  if (c.model_type == "jina_bert") h.any = true;
  for (const auto& a : c.architectures) {
    if (a.starts_with("JinaBert")) h.any = true;
  }
  return h;
}

// The class-name prefix of a BERT variant's checkpoints (XLMRobertaModel, RobertaForMaskedLM, ...).
std::string_view family_prefix(std::string_view model_type) {
  return model_type == "roberta"      ? "Roberta"
         : model_type == "mpnet"      ? "MPNet"
         : model_type == "distilbert" ? "DistilBert"
                                      : "XLMRoberta";
}

// A checkpoint of `model_type` names classes of its own family. XLMRobertaXL* and
// RobertaPreLayerNorm* share the prefixes but are other models (LayerNorm before each block).
bool is_family_class(std::string_view model_type, const std::string& s) {
  return s.starts_with(family_prefix(model_type)) && !s.starts_with("XLMRobertaXL") &&
         !s.starts_with("RobertaPreLayerNorm");
}

// What is_family_class accepts, for its error.
std::string family_classes(std::string_view model_type) {
  const std::string prefix(family_prefix(model_type));
  return "model_type " + std::string(model_type) + " runs " + prefix + "* encoders (" + prefix + "Model, ...)";
}

Status read_identity(const ConfigReader& r, ModelConfig& c) {
  EMBD_ASSIGN_OR_RETURN(auto model_type, r.string("model_type"));
  if (!model_type) return r.error("model_type", "is missing");
  c.model_type = *model_type;
  // Their architectures must name their own classes (position ids and names depend on which).
  const bool own_classes = is_bert_variant(c.model_type);
  if (c.model_type != "bert" && c.model_type != "jina_bert" && !own_classes) {
    return r.unsupported_value("model_type", c.model_type,
                               "embd runs bert, jina_bert, roberta, xlm-roberta, mpnet and distilbert");
  }
  EMBD_ASSIGN_OR_RETURN(auto name, r.string("_name_or_path"));
  c.name_or_path = name.value_or("");
  if (const json* archs = r.find("architectures"); archs && !archs->is_null()) {
    if (!archs->is_array()) return r.error("architectures", "must be an array of strings");
    for (const json& a : *archs) {
      if (!a.is_string()) return r.error("architectures", "must be an array of strings");
      const auto& s = a.get_ref<const std::string&>();
      // The class must be of the model_type's family: position ids depend on which it is.
      if (own_classes && !is_family_class(c.model_type, s)) {
        return r.unsupported_value("architectures", s, family_classes(c.model_type));
      }
      if (!own_classes && !s.starts_with("Bert") && !s.starts_with("JinaBert")) {
        return r.unsupported_value("architectures", s,
                                   "embd runs BERT and JinaBERT encoders, and Roberta* / XLMRoberta* / "
                                   "MPNet* / DistilBert* ones with model_type roberta / xlm-roberta / mpnet / "
                                   "distilbert");
      }
      c.architectures.push_back(s);
    }
  }
  return ok_status();
}

Status read_jina(const ConfigReader& r, const JinaHints& hints, ModelConfig& c) {
  c.architecture = Architecture::kJinaBert;
  if (hints.variant) {
    c.variant = *hints.variant;
  } else if (!hints.unknown.empty()) {
    return r.unsupported_value("auto_map", hints.unknown,
                               "known JinaBERT implementations: jina-bert-implementation, "
                               "jina-bert-v2-qk-post-norm, jina-bert-v2-qk-devlin-norm");
  } else {
    c.variant = JinaVariant::kBase;  // ALiBi BERT without remote code: the base block
  }
  c.position_embedding = PositionEmbedding::kAlibi;
  // JinaBertConfig's default is "original" (a plain MLP), which no published v2 model uses.
  EMBD_ASSIGN_OR_RETURN(auto ff, r.string("feed_forward_type"));
  const std::string ff_value = ff.value_or("original");
  if (ff_value == "geglu") {
    c.feed_forward = FeedForward::kGeglu;
    c.hidden_act = HiddenAct::kGeluErf;
  } else if (ff_value == "reglu") {
    c.feed_forward = FeedForward::kReglu;
    c.hidden_act = HiddenAct::kRelu;
  } else {
    return r.unsupported_value("feed_forward_type", ff_value, "JinaBERT supports geglu, reglu");
  }
  EMBD_ASSIGN_OR_RETURN(auto pooler, r.string("emb_pooler"));
  const std::string pool = pooler.value_or("mean");
  if (pool == "mean") {
    c.pooling = Pooling::kMean;
  } else if (pool == "cls") {
    c.pooling = Pooling::kCls;
  } else {
    return r.unsupported_value("emb_pooler", pool, "supported: mean, cls");
  }
  return ok_status();
}

Status read_bert(const ConfigReader& r, ModelConfig& c) {
  c.architecture = Architecture::kBert;
  c.position_embedding = PositionEmbedding::kAbsolute;
  c.feed_forward = FeedForward::kMlp;
  if (c.model_type == "distilbert") {
    // transformers' DistilBERT fills its position table with sinusoids when this is set, rather
    // than reading the stored one: a model embd has not checked.
    EMBD_ASSIGN_OR_RETURN(auto sinusoidal, r.boolean("sinusoidal_pos_embds"));
    if (sinusoidal.value_or(false)) {
      return r.unsupported_value("sinusoidal_pos_embds", "true", "embd runs DistilBERT with learned positions");
    }
  }
  const char* act_key = key(c, "hidden_act");
  EMBD_ASSIGN_OR_RETURN(auto act, r.string(act_key));
  const std::string value = act.value_or("gelu");  // BertConfig's and DistilBertConfig's default
  if (value == "gelu") {
    c.hidden_act = HiddenAct::kGeluErf;
  } else if (value == "relu") {
    c.hidden_act = HiddenAct::kRelu;
  } else {
    return r.unsupported_value(act_key, value,
                               "supported: gelu (exact erf), relu; the activation is never substituted");
  }
  return ok_status();
}

Status read_sizes(const ConfigReader& r, ModelConfig& c) {
  const bool mpnet = c.model_type == "mpnet";
  const bool distilbert = c.model_type == "distilbert";
  struct Field {
    const char* name;
    std::int64_t* out;
    std::optional<std::int64_t> fallback;  // BertConfig's default when the key is absent
    std::int64_t max;
    bool read = true;  // false: the family has no such field (MPNet and DistilBERT have no token types)
  };
  const Field fields[] = {
      {key(c, "hidden_size"), &c.hidden_size, std::nullopt, 1 << 16},
      {key(c, "num_hidden_layers"), &c.num_hidden_layers, std::nullopt, 1024},
      {key(c, "num_attention_heads"), &c.num_attention_heads, std::nullopt, 1024},
      {key(c, "intermediate_size"), &c.intermediate_size, std::nullopt, 1 << 18},
      {"vocab_size", &c.vocab_size, std::nullopt, 1 << 23},
      {"type_vocab_size", &c.type_vocab_size, 2, 1 << 16, !mpnet && !distilbert},
      {"relative_attention_num_buckets", &c.relative_attention_num_buckets, kMpnetBuckets, 1 << 16, mpnet},
      {"max_position_embeddings", &c.max_position_embeddings, 512, 1 << 22},
  };
  for (const Field& f : fields) {
    if (!f.read) continue;
    EMBD_ASSIGN_OR_RETURN(auto v, r.integer(f.name));
    if (!v && !f.fallback) return r.error(f.name, "is missing");
    const std::int64_t value = v.value_or(f.fallback.value_or(0));
    if (value <= 0 || value > f.max) {
      return r.error(f.name, "is " + std::to_string(value) + "; expected 1.." + std::to_string(f.max));
    }
    *f.out = value;
  }
  if (mpnet && c.relative_attention_num_buckets < kMpnetBuckets) {
    return r.error("relative_attention_num_buckets",
                   "is " + std::to_string(c.relative_attention_num_buckets) +
                       "; transformers' MPNet looks up " + std::to_string(kMpnetBuckets) + " buckets");
  }
  if (c.hidden_size % c.num_attention_heads != 0) {
    return r.error(key(c, "num_attention_heads"), "is " + std::to_string(c.num_attention_heads) +
                                                      ", which does not divide " + key(c, "hidden_size") + " " +
                                                      std::to_string(c.hidden_size));
  }
  // DistilBERT's LayerNorms are always 1e-12 (its config has no such field).
  std::optional<double> eps;
  if (!distilbert) {
    EMBD_ASSIGN_OR_RETURN(eps, r.number("layer_norm_eps"));
  }
  c.layer_norm_eps = eps.value_or(1e-12);
  if (!(c.layer_norm_eps > 0 && c.layer_norm_eps < 1)) {
    return r.error("layer_norm_eps", "is " + std::to_string(c.layer_norm_eps) + "; expected 0 < eps < 1");
  }
  EMBD_ASSIGN_OR_RETURN(auto pad, r.integer("pad_token_id"));
  // Absent: (XLM)RobertaConfig's and MPNetConfig's default, or BertConfig's.
  c.pad_token_id = pad.value_or(positions_follow_padding(c.model_type) ? 1 : 0);
  if (c.pad_token_id < 0 || c.pad_token_id >= c.vocab_size) {
    return r.error("pad_token_id", "is " + std::to_string(c.pad_token_id) + ", outside the vocabulary");
  }
  return ok_status();
}

// (XLM-)RoBERTa and MPNet number a sequence's positions from padding_idx + 1 (transformers'
// create_position_ids_from_input_ids), so the rows up to pad_token_id are never used and a
// 514-row table holds 512 tokens.
Status read_position_offset(const ConfigReader& r, ModelConfig& c) {
  if (!positions_follow_padding(c.model_type)) return ok_status();
  c.position_offset = c.pad_token_id + 1;
  if (c.usable_positions() < 1) {
    return r.error("pad_token_id", "is " + std::to_string(c.pad_token_id) +
                                       ": " + c.model_type + " positions start at row pad_token_id + 1 = " +
                                       std::to_string(c.position_offset) + ", which leaves none of the " +
                                       std::to_string(c.max_position_embeddings) +
                                       " rows of max_position_embeddings");
  }
  return ok_status();
}

Status read_dtype_and_length(const ConfigReader& r, ModelConfig& c) {
  for (const char* key : {"torch_dtype", "dtype"}) {
    EMBD_ASSIGN_OR_RETURN(auto s, r.string(key));
    if (!s) continue;
    auto d = parse_dtype(*s);  // "auto", "int8", ... say nothing about float weights
    if (d.ok()) c.declared_dtype = *d;
    break;
  }
  c.max_length = c.usable_positions();
  EMBD_ASSIGN_OR_RETURN(auto mml, r.integer("model_max_length"));
  if (mml) {
    if (*mml <= 0) return r.error("model_max_length", "is " + std::to_string(*mml) + "; expected > 0");
    c.max_length = std::min(c.max_length, *mml);
  }
  return ok_status();
}

}  // namespace

std::string_view architecture_name(Architecture a) {
  return a == Architecture::kJinaBert ? "jina_bert" : "bert";
}

std::string_view variant_name(JinaVariant v) {
  switch (v) {
    case JinaVariant::kBase: return "base";
    case JinaVariant::kQkPostNorm: return "qk_post_norm";
    case JinaVariant::kQkNorm: return "qk_norm";
  }
  return "base";
}

std::string_view pooling_name(Pooling p) { return p == Pooling::kMean ? "mean" : "cls"; }

Result<ModelConfig> parse_model_config(std::string_view text, std::string_view source) {
  EMBD_ASSIGN_OR_RETURN(ConfigReader r, ConfigReader::parse(text, source));
  ModelConfig c;
  EMBD_TRY(read_identity(r, c));
  EMBD_ASSIGN_OR_RETURN(JinaHints hints, jina_hints(r, c));
  EMBD_ASSIGN_OR_RETURN(auto pos, r.string("position_embedding_type"));
  if (pos && *pos != "alibi" && *pos != "absolute") {
    return r.unsupported_value("position_embedding_type", *pos, "supported: alibi (JinaBERT), absolute (BERT)");
  }
  if (is_bert_variant(c.model_type)) {
    if (pos == "alibi") {
      return r.unsupported_value("position_embedding_type", *pos,
                                 "RoBERTa, MPNet and DistilBERT models use absolute");
    }
    EMBD_TRY(read_bert(r, c));  // the same encoder; only its position rows are offset
  } else if (pos == "alibi" || (hints.any && !pos)) {
    EMBD_TRY(read_jina(r, hints, c));
  } else if (hints.any) {
    return r.unsupported_value("position_embedding_type", *pos, "JinaBERT models use alibi");
  } else {
    EMBD_TRY(read_bert(r, c));
  }
  EMBD_TRY(read_sizes(r, c));
  EMBD_TRY(read_position_offset(r, c));
  EMBD_TRY(read_dtype_and_length(r, c));
  return c;
}

}  // namespace embd::io
