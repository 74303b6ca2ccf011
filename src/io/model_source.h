// Where a model comes from: a local directory, or a Hugging Face id resolved through the
// standard HF cache ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub;
// models--org--name/snapshots/<commit>/) and downloaded with libcurl when files are missing.
//
// Thread-safety: resolve_model may run concurrently, also in several processes and alongside
// huggingface_hub: each blob download holds the same flock() huggingface_hub takes.
// Errors: kInvalidArgument (malformed id), kNotFound (no such directory, repo, revision or
// required file; the URL and HTTP status are named), kNetworkError (transport failures, 401/403
// with a hint about the token, size mismatches), kIoError (cache writes), kInvalidModel
// (malformed modules.json / weight index). Offline, a missing file is kNotFound naming it.
#pragma once

#include <filesystem>
#include <cstdint>
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
  // Ask the hub for the revision's current commit even when the cache already holds a complete
  // snapshot for it (otherwise a complete cached snapshot is used without any request).
  bool refresh = false;
  // Extra attempts after a dropped connection; each resumes the partial file with a Range request.
  int retries = 3;
  long connect_timeout_s = 15;  // per connection attempt
  long stall_timeout_s = 60;    // a transfer that receives nothing for this long fails
};

// True when `model` names an existing local directory.
bool is_local_model_dir(std::string_view model);

// Resolves `model` (a local directory, or "org/name[@revision]") to a local directory that
// holds config.json, tokenizer.json (or vocab.txt), the weights and the optional
// sentence-transformers files, downloading what the cache lacks.
Result<std::filesystem::path> resolve_model(std::string_view model, const HubOptions& options);

}  // namespace embd::io
