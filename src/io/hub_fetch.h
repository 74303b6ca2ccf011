// Where resolve_model gets each file of a repo snapshot: from the cache alone (offline, or to
// check whether a snapshot is already complete) or from the hub over HTTP into the cache.
//
// Ownership: a source borrows the HfCacheRepo and options it is given; they must outlive it.
// Thread-safety: one source per resolve call; not shared between threads.
// Errors: see model_source.h.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/status.h"
#include "io/hf_cache.h"
#include "io/model_source.h"

namespace embd::io {

class FileSource {
 public:
  virtual ~FileSource() = default;
  // Makes `file` available in the snapshot: true when it is there now, false when the repo has
  // no such file (a missing required file is an error instead).
  virtual Result<bool> get(const std::string& file, bool required) = 0;
  // The snapshot directory; valid once a get() succeeded.
  virtual std::filesystem::path dir() const = 0;
  // "org/name@revision" for messages.
  virtual std::string describe() const = 0;
};

// Files already in the cache. kProbe: a file neither cached nor known missing is kUnavailable
// (the snapshot is incomplete); kOffline: it is kNotFound when required, else skipped.
class CacheSource final : public FileSource {
 public:
  enum class Mode { kProbe, kOffline };
  CacheSource(const HfCacheRepo& cache, const RepoId& id, Mode mode);

  Result<bool> get(const std::string& file, bool required) override;
  std::filesystem::path dir() const override { return cache_.snapshot_dir(commit_); }
  std::string describe() const override { return id_.repo + "@" + id_.revision; }

 private:
  const HfCacheRepo& cache_;
  RepoId id_;
  Mode mode_;
  std::string commit_;  // "" when the revision is not in the cache
};

// Settings a HubSource needs, resolved from HubOptions and the environment.
struct HubSettings {
  std::string endpoint;  // no trailing '/'
  std::string token;     // "" = anonymous
  const HubOptions* options = nullptr;
};

// Files from the hub: HEAD for the commit, etag and size; GET (resumable, retried) into
// blobs/<etag>; then the snapshot symlink. Files the snapshot already holds cost no request once
// the commit is known.
class HubSource final : public FileSource {
 public:
  HubSource(const HfCacheRepo& cache, const RepoId& id, HubSettings settings);

  Result<bool> get(const std::string& file, bool required) override;
  std::filesystem::path dir() const override { return cache_.snapshot_dir(commit_); }
  std::string describe() const override { return id_.repo + "@" + id_.revision; }

 private:
  struct FileMeta {
    long status = 0;
    std::string url;
    std::string commit;
    std::string etag;
    std::uint64_t size = 0;  // 0 = unknown
  };
  std::string resolve_url(const std::string& revision, const std::string& file) const;
  std::vector<std::string> auth_headers() const;
  Result<FileMeta> head(const std::string& file);
  Status check_status(long status, const std::string& method, const std::string& url) const;
  Status download_blob(const FileMeta& meta, const std::string& file);
  Status download_attempts(const FileMeta& meta, const std::string& file,
                           const std::filesystem::path& incomplete);

  const HfCacheRepo& cache_;
  RepoId id_;
  HubSettings settings_;
  std::string commit_;  // pinned by the first answer, so every file comes from one commit
};

}  // namespace embd::io
