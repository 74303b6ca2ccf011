// The Hugging Face hub cache layout, shared with huggingface_hub (Python) so both reuse files:
//
//   <cache>/models--<org>--<name>/refs/<revision>            the commit hash the revision names
//   <cache>/models--<org>--<name>/snapshots/<commit>/<file>  relative symlink -> ../../blobs/<etag>
//   <cache>/models--<org>--<name>/blobs/<etag>               the content (<etag>.incomplete while
//                                                           downloading)
//   <cache>/models--<org>--<name>/.no_exist/<commit>/<file>  empty: the hub said 404
//   <cache>/.locks/models--<org>--<name>/<etag>.lock         flock()ed while a blob downloads
//
// Also: model id parsing and validation of every name that becomes a path (commit, etag, file),
// since those come from the network and must never leave the cache directory.
// Thread-safety: HfCacheRepo is immutable after construction; its methods touch only the file
// system (concurrent processes are serialised per blob by BlobLock).
// Errors: kInvalidArgument for malformed ids/names, kIoError naming the path for file system
// failures.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace embd::io {

struct RepoId {
  std::string repo;      // "org/name" (or a legacy "name")
  std::string revision;  // never empty: "main" unless given
};

// Parses "org/name[@revision]". `revision_override` (non-empty) must agree with an @revision.
Result<RepoId> parse_repo_id(std::string_view model, std::string_view revision_override);

// True for a 40-hex-digit git commit hash.
bool is_commit_hash(std::string_view text);

// A repo-relative file name safe to join to a directory: relative, '/'-separated, no "." or
// ".." components, no backslashes or control characters.
bool is_safe_repo_file(std::string_view name);

// A single path component safe as a file name (commit hashes, etags): [A-Za-z0-9._-], not "."/"..".
bool is_safe_component(std::string_view name);

// $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else
// $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
std::filesystem::path default_hub_cache_dir();

// $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface.
std::filesystem::path default_hf_home();

class HfCacheRepo {
 public:
  HfCacheRepo(std::filesystem::path cache_dir, const std::string& repo);

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path snapshot_dir(const std::string& commit) const;
  std::filesystem::path blob_path(const std::string& etag) const;
  std::filesystem::path lock_path(const std::string& etag) const;

  // The commit refs/<revision> holds, or nullopt when absent or not a commit hash.
  std::optional<std::string> read_ref(const std::string& revision) const;
  Status write_ref(const std::string& revision, const std::string& commit) const;

  // The snapshot file exists (a symlink must point at an existing blob).
  bool has_file(const std::string& commit, const std::string& file) const;
  bool is_known_missing(const std::string& commit, const std::string& file) const;
  Status mark_missing(const std::string& commit, const std::string& file) const;

  // Points snapshots/<commit>/<file> at blobs/<etag> with a relative symlink (replacing what is
  // there); falls back to a copy where the file system has no symlinks.
  Status link_blob(const std::string& commit, const std::string& file, const std::string& etag) const;

 private:
  std::filesystem::path cache_dir_;
  std::string folder_;  // "models--org--name"
  std::filesystem::path root_;
};

// An exclusive flock() on a lock file (the same lock huggingface_hub's filelock takes), held for
// the object's lifetime.
class BlobLock {
 public:
  static Result<BlobLock> acquire(const std::filesystem::path& path);
  BlobLock(BlobLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  BlobLock& operator=(BlobLock&&) = delete;
  BlobLock(const BlobLock&) = delete;
  ~BlobLock();

 private:
  explicit BlobLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace embd::io
