// Cache-only and HTTP file sources for resolve_model. See hub_fetch.h.
#include "io/hub_fetch.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <system_error>
#include <thread>

#include "io/http_client.h"

namespace embd::io {
namespace fs = std::filesystem;
namespace {

constexpr long kHeadTimeoutS = 30;
constexpr int kMaxRelativeRedirects = 5;

// huggingface_hub's _normalize_etag: drop a weak "W/" prefix and the quotes.
std::string normalize_etag(std::string etag) {
  if (etag.rfind("W/", 0) == 0) etag.erase(0, 2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
  return etag;
}

std::uint64_t parse_size(const std::string& text) {
  if (text.empty() || text.size() > 19) return 0;
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return 0;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return value;
}

std::uint64_t file_size_or_zero(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec ? 0 : static_cast<std::uint64_t>(size);
}

}  // namespace

CacheSource::CacheSource(const HfCacheRepo& cache, const RepoId& id, Mode mode)
    : cache_(cache), id_(id), mode_(mode) {
  if (is_commit_hash(id_.revision)) {
    commit_ = id_.revision;
  } else if (auto ref = cache_.read_ref(id_.revision)) {
    commit_ = *ref;
  }
}

Result<bool> CacheSource::get(const std::string& file, bool required) {
  if (commit_.empty()) {
    const std::string what = "revision '" + id_.revision + "' of " + id_.repo + " is not in the cache (no " +
                             (cache_.root() / "refs" / id_.revision).string() + ")";
    if (mode_ == Mode::kProbe) return Status(ErrorCode::kUnavailable, what);
    return not_found("offline mode: " + what + "; download it first (embd download) or unset HF_HUB_OFFLINE");
  }
  if (cache_.has_file(commit_, file)) return true;
  if (cache_.is_known_missing(commit_, file)) {
    if (required) return not_found(id_.repo + "@" + id_.revision + " has no file '" + file + "'");
    return false;
  }
  const fs::path path = cache_.snapshot_dir(commit_) / file;
  if (mode_ == Mode::kProbe) return Status(ErrorCode::kUnavailable, path.string() + " is not cached");
  if (!required) return false;
  return not_found("offline mode: '" + file + "' of " + id_.repo + "@" + id_.revision + " is not in the cache (" +
                   path.string() + "); download it first (embd download) or unset HF_HUB_OFFLINE");
}

HubSource::HubSource(const HfCacheRepo& cache, const RepoId& id, HubSettings settings)
    : cache_(cache), id_(id), settings_(std::move(settings)) {}

std::string HubSource::resolve_url(const std::string& revision, const std::string& file) const {
  return settings_.endpoint + "/" + id_.repo + "/resolve/" + url_escape(revision, false) + "/" +
         url_escape(file, true);
}

std::vector<std::string> HubSource::auth_headers() const {
  if (settings_.token.empty()) return {};
  return {"Authorization: Bearer " + settings_.token};
}

Status HubSource::check_status(long status, const std::string& method, const std::string& url) const {
  if (status >= 200 && status < 400) return ok_status();
  const std::string where = method + " " + url + ": HTTP " + std::to_string(status);
  if (status == 401 || status == 403) {
    return Status(ErrorCode::kNetworkError,
                  where + (settings_.token.empty()
                               ? " (the repository is private, gated or does not exist; set HF_TOKEN "
                                 "or $HF_HOME/token to a token with access)"
                               : " (the token was refused: check that HF_TOKEN / $HF_HOME/token grants "
                                 "access to " + id_.repo + ")"));
  }
  if (status == 404) return not_found(where + " (no such repository, revision or file)");
  return Status(ErrorCode::kNetworkError, where);
}

// HEAD without following redirects: the hub's own answer carries the commit and the etag; a
// redirect to another host (the CDN) ends the walk, a relative one (renamed repo) is followed.
Result<HubSource::FileMeta> HubSource::head(const std::string& file) {
  FileMeta meta;
  meta.url = resolve_url(commit_.empty() ? id_.revision : commit_, file);
  HttpRequest request;
  request.url = meta.url;
  request.head = true;
  request.follow_redirects = false;
  request.headers = auth_headers();
  request.connect_timeout_s = settings_.options->connect_timeout_s;
  request.timeout_s = kHeadTimeoutS;
  HttpResponse response;
  for (int hop = 0;; ++hop) {
    EMBD_ASSIGN_OR_RETURN(response, http_fetch(request));
    const std::string location = response.header("location");
    const bool relative = !location.empty() && location.front() == '/';
    if (response.status < 300 || response.status >= 400 || !relative || hop == kMaxRelativeRedirects) break;
    request.url = settings_.endpoint + location;
  }
  meta.status = response.status;
  meta.commit = response.header("x-repo-commit");
  if (meta.status == 404) return meta;
  EMBD_TRY(check_status(meta.status, "HEAD", meta.url));
  std::string etag = response.header("x-linked-etag");
  if (etag.empty()) etag = response.header("etag");
  meta.etag = normalize_etag(etag);
  meta.size = parse_size(response.header("x-linked-size"));
  if (meta.size == 0 && meta.status < 300) meta.size = parse_size(response.header("content-length"));
  if (!is_commit_hash(meta.commit)) {
    return Status(ErrorCode::kNetworkError, "HEAD " + meta.url + ": the answer has no valid X-Repo-Commit header ('" +
                                                meta.commit + "'); is " + settings_.endpoint + " a Hugging Face hub?");
  }
  if (!is_safe_component(meta.etag)) {
    return Status(ErrorCode::kNetworkError, "HEAD " + meta.url + ": missing or malformed ETag '" + etag + "'");
  }
  return meta;
}

Result<bool> HubSource::get(const std::string& file, bool required) {
  if (!is_safe_repo_file(file)) return invalid_model("unsafe file name '" + file + "' in " + describe());
  if (!commit_.empty()) {
    if (cache_.has_file(commit_, file)) return true;
    if (cache_.is_known_missing(commit_, file) && !required) return false;
  }
  EMBD_ASSIGN_OR_RETURN(FileMeta meta, head(file));
  if (commit_.empty() && is_commit_hash(meta.commit)) {
    commit_ = meta.commit;
    EMBD_TRY(cache_.write_ref(id_.revision, commit_));
  }
  if (meta.status == 404) {
    // Remember the miss (huggingface_hub's .no_exist) so offline runs and later resolves know.
    if (!commit_.empty() && meta.commit == commit_) EMBD_TRY(cache_.mark_missing(commit_, file));
    if (required) return check_status(404, "HEAD", meta.url);
    return false;
  }
  if (meta.commit != commit_) {
    return Status(ErrorCode::kNetworkError, "HEAD " + meta.url + " answered commit " + meta.commit +
                                                ", expected " + commit_);
  }
  if (cache_.has_file(commit_, file)) return true;
  std::error_code ec;
  if (!fs::is_regular_file(cache_.blob_path(meta.etag), ec)) EMBD_TRY(download_blob(meta, file));
  EMBD_TRY(cache_.link_blob(commit_, file, meta.etag));
  return true;
}

Status HubSource::download_blob(const FileMeta& meta, const std::string& file) {
  const fs::path blob = cache_.blob_path(meta.etag);
  std::error_code ec;
  fs::create_directories(blob.parent_path(), ec);
  if (ec) return io_error("cannot create " + blob.parent_path().string() + ": " + ec.message());
  // The same lock huggingface_hub takes: one writer per blob across processes.
  EMBD_ASSIGN_OR_RETURN(BlobLock lock, BlobLock::acquire(cache_.lock_path(meta.etag)));
  if (fs::is_regular_file(blob, ec)) return ok_status();  // another process finished it
  const fs::path incomplete = blob.string() + ".incomplete";
  EMBD_TRY(download_attempts(meta, file, incomplete));
  fs::rename(incomplete, blob, ec);  // atomic: a blob is complete or absent
  if (ec) return io_error("cannot rename " + incomplete.string() + " to " + blob.string() + ": " + ec.message());
  return ok_status();
}

Status HubSource::download_attempts(const FileMeta& meta, const std::string& file, const fs::path& incomplete) {
  const HubOptions& options = *settings_.options;
  HttpRequest request;
  request.url = resolve_url(commit_, file);  // pinned commit; redirects (CDN) are followed
  request.headers = auth_headers();
  request.connect_timeout_s = options.connect_timeout_s;
  request.stall_timeout_s = options.stall_timeout_s;
  HttpProgress progress;
  if (options.progress) {
    progress = [&](std::uint64_t done, std::uint64_t total) {
      options.progress(file, done, meta.size != 0 ? meta.size : total);
    };
  }
  std::error_code ec;
  Status last;
  for (int attempt = 0; attempt <= std::max(0, options.retries); ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(200 << std::min(attempt, 5)));
    std::uint64_t offset = file_size_or_zero(incomplete);
    if (meta.size != 0 && offset > meta.size) {  // not ours to continue: start over
      fs::remove(incomplete, ec);
      offset = 0;
    }
    if (meta.size != 0 && offset == meta.size) return ok_status();
    Result<HttpResponse> response = http_download(request, incomplete, offset, progress);
    if (!response.ok()) {
      last = response.status();
      if (last.code() == ErrorCode::kNetworkError) continue;  // dropped: resume from what arrived
      return last;
    }
    if (response->status == 416) {  // our partial file does not fit the remote one
      fs::remove(incomplete, ec);
      last = Status(ErrorCode::kNetworkError, "GET " + request.url + ": HTTP 416 for a resumed download");
      continue;
    }
    if (response->status >= 500) {  // the hub or CDN hiccuped: worth another try
      last = check_status(response->status, "GET", request.url);
      continue;
    }
    EMBD_TRY(check_status(response->status, "GET", request.url));
    if (!fs::exists(incomplete, ec)) {  // an empty file: no body byte ever opened it
      if (!std::ofstream(incomplete)) return io_error("cannot create " + incomplete.string());
    }
    const std::uint64_t got = file_size_or_zero(incomplete);
    if (meta.size == 0 || got == meta.size) return ok_status();
    last = Status(ErrorCode::kNetworkError, "GET " + request.url + ": received " + std::to_string(got) +
                                                " bytes, expected " + std::to_string(meta.size));
    if (got > meta.size) fs::remove(incomplete, ec);
  }
  return last.with_context("downloading '" + file + "' of " + describe() + " (partial data kept in " +
                           incomplete.string() + "; run again to resume)");
}

}  // namespace embd::io
