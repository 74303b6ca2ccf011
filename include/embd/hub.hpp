// Fetching models from the Hugging Face hub into the local cache, ahead of Engine::load().
//
// The cache is the one huggingface_hub uses ($HF_HUB_CACHE, else $HF_HOME/hub, else
// ~/.cache/huggingface/hub), so files downloaded by either tool are shared. Environment:
// HF_ENDPOINT, HF_TOKEN (else $HF_HOME/token), HF_HUB_OFFLINE=1.
// Thread-safety: download_model may run from any number of threads and processes at once
// (per-file locks). Nothing here throws; failures come back as Status.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "embd/status.hpp"

namespace embd {

struct DownloadOptions {
  // Revision for ids without "@rev"; "" = "main". Must agree with an "@rev" in the id.
  std::string revision;
  // Hub cache directory; "" = from the environment as above.
  std::string cache_dir;
  // Hub URL; "" = $HF_ENDPOINT or https://huggingface.co.
  std::string endpoint;
  // Access token; "" = $HF_TOKEN, else the token file in $HF_HOME.
  std::string token;
  // Use only the cache (also when HF_HUB_OFFLINE=1): checks that the model is complete there.
  bool offline = false;
  // Ask the hub for the revision's current commit even when the cache has a complete snapshot.
  bool refresh = false;
  // Called with (file, bytes done, bytes total or 0 when unknown) while a file downloads.
  std::function<void(std::string_view file, std::uint64_t done, std::uint64_t total)> progress;
};

// Makes sure the model's files (config, weights, tokenizer, sentence-transformers metadata) are
// in the cache and returns the local directory that holds them. `model` is "org/name[@revision]"
// or a local model directory (returned as an absolute path).
// Errors: kInvalidArgument (malformed id), kNotFound (no such repo, revision or required file),
// kNetworkError (transport, HTTP 401/403, size mismatch), kIoError (cache writes).
Result<std::string> download_model(const std::string& model, const DownloadOptions& options = {});

}  // namespace embd
