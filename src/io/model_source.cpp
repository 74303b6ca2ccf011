// resolve_model: local directory or hub id -> directory with the model's files. The list of files
// a model needs lives here (fetch_model_files); where each comes from is a FileSource.
#include "io/model_source.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <system_error>

#include "io/hf_cache.h"
#include "io/hub_fetch.h"

namespace embd::io {
namespace fs = std::filesystem;
namespace {

constexpr const char* kDefaultEndpoint = "https://huggingface.co";
// Optional files read by the tokenizer and the sentence-transformers metadata.
constexpr const char* kOptionalFiles[] = {"tokenizer_config.json", "special_tokens_map.json",
                                          "sentence_bert_config.json", "config_sentence_transformers.json"};

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

// huggingface_hub's truthy values for boolean environment variables.
bool env_flag(const char* name) {
  std::string v = env(name);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return v == "1" || v == "ON" || v == "YES" || v == "TRUE";
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  std::size_t start = 0;
  while (start < s.size() && std::isspace(static_cast<unsigned char>(s[start]))) ++start;
  return s.substr(start);
}

std::string read_token_file() {
  fs::path path = env("HF_TOKEN_PATH");
  if (path.empty()) path = default_hf_home() / "token";
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return trim(text.str());
}

Result<nlohmann::json> read_json(const fs::path& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error("cannot read " + what + " (" + path.string() + ")");
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json json = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return invalid_model(what + " (" + path.string() + ") is not valid JSON");
  return json;
}

// Shard names from model.safetensors.index.json's "weight_map" (tensor -> file).
Result<std::set<std::string>> index_shards(const fs::path& path, const std::string& what) {
  EMBD_ASSIGN_OR_RETURN(nlohmann::json index, read_json(path, what));
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    return invalid_model(what + ": missing object field 'weight_map'");
  }
  std::set<std::string> shards;
  for (const auto& [tensor, file] : index["weight_map"].items()) {
    if (!file.is_string() || !is_safe_repo_file(file.get<std::string>())) {
      return invalid_model(what + ": weight_map['" + tensor + "'] is not a safe relative file name");
    }
    shards.insert(file.get<std::string>());
  }
  if (shards.empty()) return invalid_model(what + ": 'weight_map' is empty");
  return shards;
}

// Module folders from modules.json (e.g. "1_Pooling"); modules without files have path "".
Result<std::vector<std::string>> module_dirs(const fs::path& path, const std::string& what) {
  EMBD_ASSIGN_OR_RETURN(nlohmann::json modules, read_json(path, what));
  if (!modules.is_array()) return invalid_model(what + ": expected a JSON array of modules");
  std::vector<std::string> dirs;
  for (std::size_t i = 0; i < modules.size(); ++i) {
    const auto& m = modules[i];
    if (!m.is_object() || !m.contains("path") || !m["path"].is_string()) {
      return invalid_model(what + ": module " + std::to_string(i) + " has no string field 'path'");
    }
    const std::string dir = m["path"].get<std::string>();
    if (dir.empty()) continue;
    if (!is_safe_repo_file(dir)) {
      return invalid_model(what + ": module " + std::to_string(i) + " path '" + dir + "' is not a safe relative path");
    }
    dirs.push_back(dir);
  }
  return dirs;
}

Status fetch_weights(FileSource& source) {
  EMBD_ASSIGN_OR_RETURN(bool single, source.get("model.safetensors", false));
  if (single) return ok_status();
  EMBD_ASSIGN_OR_RETURN(bool indexed, source.get("model.safetensors.index.json", false));
  if (!indexed) {
    return not_found(source.describe() + " has neither model.safetensors nor model.safetensors.index.json "
                     "(only safetensors weights are supported)");
  }
  const std::string what = source.describe() + " model.safetensors.index.json";
  EMBD_ASSIGN_OR_RETURN(auto shards, index_shards(source.dir() / "model.safetensors.index.json", what));
  for (const auto& shard : shards) {
    EMBD_ASSIGN_OR_RETURN(bool got, source.get(shard, true));
    (void)got;
  }
  return ok_status();
}

// Every file a model needs, in an order where each name is known when it is asked for.
Status fetch_model_files(FileSource& source) {
  EMBD_ASSIGN_OR_RETURN(bool config, source.get("config.json", true));
  (void)config;
  EMBD_TRY(fetch_weights(source));
  EMBD_ASSIGN_OR_RETURN(bool tokenizer, source.get("tokenizer.json", false));
  if (!tokenizer) {
    EMBD_ASSIGN_OR_RETURN(bool vocab, source.get("vocab.txt", false));
    if (!vocab) return not_found(source.describe() + " has neither tokenizer.json nor vocab.txt");
  }
  for (const char* file : kOptionalFiles) {
    EMBD_ASSIGN_OR_RETURN(bool got, source.get(file, false));
    (void)got;
  }
  EMBD_ASSIGN_OR_RETURN(bool modules, source.get("modules.json", false));
  if (modules) {
    EMBD_ASSIGN_OR_RETURN(auto dirs, module_dirs(source.dir() / "modules.json", source.describe() + " modules.json"));
    for (const auto& dir : dirs) {
      EMBD_ASSIGN_OR_RETURN(bool got, source.get(dir + "/config.json", false));
      (void)got;
    }
  }
  return ok_status();
}

Result<fs::path> resolve_hub_model(std::string_view model, const HubOptions& options) {
  EMBD_ASSIGN_OR_RETURN(RepoId id, parse_repo_id(model, options.revision));
  std::error_code ec;
  const fs::path cache_dir =
      fs::absolute(options.cache_dir.empty() ? default_hub_cache_dir() : options.cache_dir, ec);
  if (ec) return io_error("cannot make the cache directory path absolute: " + ec.message());
  const HfCacheRepo cache(cache_dir, id.repo);
  const bool offline = options.offline || env_flag("HF_HUB_OFFLINE");
  if (!options.refresh || offline) {
    // A complete snapshot needs no request at all (commits are immutable; refs move only on
    // refresh).
    CacheSource probe(cache, id, CacheSource::Mode::kProbe);
    if (fetch_model_files(probe).ok()) return probe.dir();
  }
  if (offline) {
    CacheSource source(cache, id, CacheSource::Mode::kOffline);
    EMBD_TRY(fetch_model_files(source));
    return source.dir();
  }
  HubSettings settings;
  settings.endpoint = !options.endpoint.empty() ? options.endpoint : env("HF_ENDPOINT");
  if (settings.endpoint.empty()) settings.endpoint = kDefaultEndpoint;
  while (!settings.endpoint.empty() && settings.endpoint.back() == '/') settings.endpoint.pop_back();
  settings.token = !options.token.empty() ? options.token : trim(env("HF_TOKEN"));
  if (settings.token.empty()) settings.token = read_token_file();
  settings.options = &options;
  HubSource source(cache, id, std::move(settings));
  EMBD_TRY(fetch_model_files(source));
  return source.dir();
}

// Not an id (so a missing directory is reported as such, not looked up on the hub).
bool looks_like_path(std::string_view model) {
  const std::string_view name = model.substr(0, model.find('@'));
  return name.empty() || name.front() == '/' || name.front() == '.' || name.front() == '~' ||
         std::count(name.begin(), name.end(), '/') > 1;
}

}  // namespace

bool is_local_model_dir(std::string_view model) {
  std::error_code ec;
  return !model.empty() && fs::is_directory(fs::path(model), ec);
}

Result<fs::path> resolve_model(std::string_view model, const HubOptions& options) {
  if (is_local_model_dir(model)) {
    const fs::path dir(model);
    std::error_code ec;
    if (!fs::is_regular_file(dir / "config.json", ec)) {
      return not_found("model directory '" + std::string(model) + "' has no config.json");
    }
    return fs::absolute(dir, ec);
  }
  if (looks_like_path(model)) {
    return not_found("model directory '" + std::string(model) + "' does not exist");
  }
  return resolve_hub_model(model, options);
}

}  // namespace embd::io
