// load_model_config: config.json plus the sentence-transformers metadata of a model directory
// (modules.json, the Pooling module's config.json, sentence_bert_config.json,
// config_sentence_transformers.json).
#include <algorithm>
#include <filesystem>
#include <system_error>

#include "io/config_json.h"
#include "io/model_config.h"

namespace embd::io {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

struct Modules {
  std::optional<std::string> pooling_path;
  bool normalize = false;
};

// The class name after the last '.', e.g. "sentence_transformers.models.Pooling" -> "Pooling".
std::string class_name(const std::string& type) {
  const auto dot = type.rfind('.');
  return dot == std::string::npos ? type : type.substr(dot + 1);
}

bool stays_inside(const std::string& rel) {
  const fs::path p(rel);
  if (p.is_absolute() || p.has_root_path()) return false;
  return std::none_of(p.begin(), p.end(), [](const fs::path& part) { return part == ".."; });
}

Result<Modules> read_modules(const fs::path& file) {
  EMBD_ASSIGN_OR_RETURN(std::string text, read_text_file(file.string()));
  EMBD_ASSIGN_OR_RETURN(ConfigReader r, ConfigReader::parse(text, file.string(), json::value_t::array));
  Modules m;
  std::size_t index = 0;
  for (const json& module : r.doc()) {
    const std::string where = "modules[" + std::to_string(index++) + "]";
    if (!module.is_object() || !module.contains("type") || !module["type"].is_string()) {
      return r.error(where, "must be an object with a string \"type\"");
    }
    const std::string type = class_name(module["type"].get<std::string>());
    std::string path;
    if (module.contains("path")) {
      if (!module["path"].is_string()) return r.error(where + ".path", "must be a string");
      path = module["path"].get<std::string>();
    }
    if (type == "Transformer") continue;
    if (type == "Normalize") {
      m.normalize = true;
    } else if (type == "Pooling") {
      if (m.pooling_path) return r.error(where, "is a second Pooling module");
      if (path.empty() || !stays_inside(path)) {
        return r.error(where + ".path", "'" + path + "' is not a folder inside the model directory");
      }
      m.pooling_path = path;
    } else {
      // Dense, LayerNorm, ... would change the output; running without them would be wrong.
      return r.unsupported_value(where + ".type", module["type"].get<std::string>(),
                                 "supported modules: Transformer, Pooling, Normalize");
    }
  }
  return m;
}

// <pooling dir>/config.json: exactly one of the supported pooling_mode_* flags is true.
Result<Pooling> read_pooling(const fs::path& file, std::int64_t hidden_size) {
  EMBD_ASSIGN_OR_RETURN(std::string text, read_text_file(file.string()));
  EMBD_ASSIGN_OR_RETURN(ConfigReader r, ConfigReader::parse(text, file.string()));
  EMBD_ASSIGN_OR_RETURN(auto dim, r.integer("word_embedding_dimension"));
  if (dim && *dim != hidden_size) {
    return r.error("word_embedding_dimension", "is " + std::to_string(*dim) +
                                                   " but the model's hidden_size is " +
                                                   std::to_string(hidden_size));
  }
  EMBD_ASSIGN_OR_RETURN(auto mode, r.string("pooling_mode"));  // newer single-string form
  if (mode) {
    if (*mode == "mean") return Pooling::kMean;
    if (*mode == "cls") return Pooling::kCls;
    return r.unsupported_value("pooling_mode", *mode, "supported: mean, cls");
  }
  std::optional<Pooling> chosen;
  for (const auto& [key, value] : r.doc().items()) {
    if (!key.starts_with("pooling_mode_")) continue;
    EMBD_ASSIGN_OR_RETURN(auto on, r.boolean(key.c_str()));
    if (!on.value_or(false)) continue;
    std::optional<Pooling> p;
    if (key == "pooling_mode_mean_tokens") p = Pooling::kMean;
    if (key == "pooling_mode_cls_token") p = Pooling::kCls;
    if (!p) return r.unsupported_value(key, "true", "supported: pooling_mode_mean_tokens, pooling_mode_cls_token");
    if (chosen) return r.error(key, "is a second pooling mode; embd pools one way per model");
    chosen = p;
  }
  if (!chosen) return r.error("pooling_mode_mean_tokens", "is not set and no other supported mode is");
  return *chosen;
}

Status read_sentence_bert_config(const fs::path& file, ModelConfig& c) {
  EMBD_ASSIGN_OR_RETURN(std::string text, read_text_file(file.string()));
  EMBD_ASSIGN_OR_RETURN(ConfigReader r, ConfigReader::parse(text, file.string()));
  EMBD_ASSIGN_OR_RETURN(auto max_seq, r.integer("max_seq_length"));
  if (max_seq) {
    if (*max_seq <= 0) return r.error("max_seq_length", "is " + std::to_string(*max_seq) + "; expected > 0");
    c.max_length = std::min(c.max_length, *max_seq);
  }
  EMBD_ASSIGN_OR_RETURN(auto lower, r.boolean("do_lower_case"));
  (void)lower;  // the tokenizer's own normalizer decides casing
  return ok_status();
}

// Read only to reject a malformed file early; nothing in it changes the embeddings.
Status check_st_config(const fs::path& file) {
  EMBD_ASSIGN_OR_RETURN(std::string text, read_text_file(file.string()));
  EMBD_ASSIGN_OR_RETURN(ConfigReader r, ConfigReader::parse(text, file.string()));
  if (const json* prompts = r.find("prompts"); prompts && !prompts->is_null()) {
    if (!prompts->is_object()) return r.error("prompts", "must be an object of strings");
    for (const auto& [name, value] : prompts->items()) {
      if (!value.is_string()) return r.error("prompts." + name, "must be a string");
    }
  }
  EMBD_ASSIGN_OR_RETURN(auto sim, r.string("similarity_fn_name"));
  (void)sim;
  return ok_status();
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

}  // namespace

Result<ModelConfig> load_model_config(const fs::path& dir) {
  const fs::path config_path = dir / "config.json";
  EMBD_ASSIGN_OR_RETURN(std::string text, read_text_file(config_path.string()));
  EMBD_ASSIGN_OR_RETURN(ModelConfig c, parse_model_config(text, config_path.string()));
  if (is_file(dir / "modules.json")) {
    EMBD_ASSIGN_OR_RETURN(Modules m, read_modules(dir / "modules.json"));
    c.normalize = m.normalize;
    if (m.pooling_path) {
      const fs::path pooling_config = dir / *m.pooling_path / "config.json";
      if (!is_file(pooling_config)) {
        return invalid_model((dir / "modules.json").string() + ": Pooling module's " +
                             pooling_config.string() + " does not exist");
      }
      EMBD_ASSIGN_OR_RETURN(c.pooling, read_pooling(pooling_config, c.hidden_size));
      c.pooling_from_sentence_transformers = true;
    }
  }
  if (is_file(dir / "sentence_bert_config.json")) {
    EMBD_TRY(read_sentence_bert_config(dir / "sentence_bert_config.json", c));
  }
  if (is_file(dir / "config_sentence_transformers.json")) {
    EMBD_TRY(check_st_config(dir / "config_sentence_transformers.json"));
  }
  return c;
}

}  // namespace embd::io
