// Where a model comes from: a local directory, or a Hugging Face id resolved through the
// standard HF cache ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub;
// models--org--name/snapshots/<commit>/) and downloaded with libcurl when files are missing.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace embd::io {

struct HubOptions {
  std::string revision;        // "" = "main" (or the @rev in the id)
  bool offline = false;        // also when HF_HUB_OFFLINE=1
  std::string endpoint;        // "" = $HF_ENDPOINT or https://huggingface.co
  std::string token;           // "" = $HF_TOKEN, else the token file in $HF_HOME
  std::filesystem::path cache_dir;  // "" = from the environment as above
  // Called with (file, bytes done, bytes total or 0 if unknown) during downloads.
  std::function<void(std::string_view, std::uint64_t, std::uint64_t)> progress;
};

// True when `model` names an existing local directory.
bool is_local_model_dir(std::string_view model);

// Resolves `model` (a local directory, or "org/name[@revision]") to a local directory that
// holds config.json, tokenizer.json (or vocab.txt), the weights and the optional
// sentence-transformers files, downloading what the cache lacks.
Result<std::filesystem::path> resolve_model(std::string_view model, const HubOptions& options);

}  // namespace embd::io
