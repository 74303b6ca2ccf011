// HF cache layout and name validation. See hf_cache.h.
#include "io/hf_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

namespace embd::io {
namespace fs = std::filesystem;
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

// HF repo name parts: letters, digits, '-', '_', '.'; no "--" or ".." and no leading/trailing
// '-' or '.' (huggingface_hub's validate_repo_id), at most 96 characters.
bool is_valid_repo_part(std::string_view part) {
  if (part.empty() || part.size() > 96) return false;
  for (char c : part) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  }
  if (part.find("--") != std::string_view::npos || part.find("..") != std::string_view::npos) return false;
  return part.front() != '-' && part.front() != '.' && part.back() != '-' && part.back() != '.';
}

bool is_safe_revision(std::string_view rev) {
  if (rev.empty() || rev.size() > 256) return false;
  // Revisions may hold '/' (e.g. "refs/pr/1"): each component must be a safe file name.
  std::size_t start = 0;
  while (start <= rev.size()) {
    std::size_t end = rev.find('/', start);
    if (end == std::string_view::npos) end = rev.size();
    std::string_view part = rev.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    for (char c : part) {
      if (std::iscntrl(static_cast<unsigned char>(c)) || c == '\\') return false;
    }
    start = end + 1;
  }
  return true;
}

// A sibling name no other thread or process uses, for write-then-rename.
fs::path temp_sibling(const fs::path& path) {
  static std::atomic<unsigned> counter{0};
  return path.string() + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
}

Status errno_status(const std::string& what, const fs::path& path) {
  return io_error(what + " " + path.string() + ": " + std::strerror(errno));
}

}  // namespace

Result<RepoId> parse_repo_id(std::string_view model, std::string_view revision_override) {
  RepoId id;
  std::string_view name = model;
  std::string revision;
  if (auto at = model.find('@'); at != std::string_view::npos) {
    name = model.substr(0, at);
    revision = std::string(model.substr(at + 1));
    if (revision.empty()) return invalid_argument("model id '" + std::string(model) + "': empty revision after '@'");
  }
  if (!revision_override.empty()) {
    if (!revision.empty() && revision != revision_override) {
      return invalid_argument("model id '" + std::string(model) + "' names revision '" + revision +
                              "' but revision '" + std::string(revision_override) + "' was also given");
    }
    revision = std::string(revision_override);
  }
  if (revision.empty()) revision = "main";
  const auto slash = name.find('/');
  const bool ok = slash == std::string_view::npos
                      ? is_valid_repo_part(name)
                      : is_valid_repo_part(name.substr(0, slash)) && is_valid_repo_part(name.substr(slash + 1));
  if (!ok) {
    std::string msg(model);  // built in steps: GCC 12 warns falsely (-Wrestrict) on "'" + str
    msg += "' is neither a local model directory nor a Hugging Face model id (org/name[@revision])";
    return invalid_argument("'" + msg);
  }
  if (!is_safe_revision(revision)) {
    return invalid_argument("model id '" + std::string(model) + "': invalid revision '" + revision + "'");
  }
  id.repo = std::string(name);
  id.revision = std::move(revision);
  return id;
}

bool is_commit_hash(std::string_view text) {
  if (text.size() != 40) return false;
  for (char c : text) {
    if (!std::isxdigit(static_cast<unsigned char>(c)) || std::isupper(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool is_safe_component(std::string_view name) {
  if (name.empty() || name.size() > 255 || name == "." || name == "..") return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

bool is_safe_repo_file(std::string_view name) {
  if (name.empty() || name.size() > 1024 || name.front() == '/') return false;
  std::size_t start = 0;
  while (start <= name.size()) {
    std::size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view part = name.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    for (char c : part) {
      if (std::iscntrl(static_cast<unsigned char>(c)) || c == '\\') return false;
    }
    start = end + 1;
  }
  return true;
}

fs::path default_hf_home() {
  if (auto home = env("HF_HOME"); !home.empty()) return home;
  if (auto xdg = env("XDG_CACHE_HOME"); !xdg.empty()) return fs::path(xdg) / "huggingface";
  return fs::path(env("HOME")) / ".cache" / "huggingface";
}

fs::path default_hub_cache_dir() {
  if (auto dir = env("HF_HUB_CACHE"); !dir.empty()) return dir;
  if (auto dir = env("HUGGINGFACE_HUB_CACHE"); !dir.empty()) return dir;
  return default_hf_home() / "hub";
}

HfCacheRepo::HfCacheRepo(fs::path cache_dir, const std::string& repo) : cache_dir_(std::move(cache_dir)) {
  folder_ = "models";
  std::size_t start = 0;
  while (true) {  // "org/name" -> "models--org--name"
    const std::size_t slash = repo.find('/', start);
    folder_ += "--" + repo.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  root_ = cache_dir_ / folder_;
}

fs::path HfCacheRepo::snapshot_dir(const std::string& commit) const { return root_ / "snapshots" / commit; }
fs::path HfCacheRepo::blob_path(const std::string& etag) const { return root_ / "blobs" / etag; }
fs::path HfCacheRepo::lock_path(const std::string& etag) const {
  return cache_dir_ / ".locks" / folder_ / (etag + ".lock");
}

std::optional<std::string> HfCacheRepo::read_ref(const std::string& revision) const {
  std::ifstream in(root_ / "refs" / revision);
  std::string commit;
  if (!in || !std::getline(in, commit)) return std::nullopt;
  while (!commit.empty() && std::isspace(static_cast<unsigned char>(commit.back()))) commit.pop_back();
  if (!is_commit_hash(commit)) return std::nullopt;
  return commit;
}

Status HfCacheRepo::write_ref(const std::string& revision, const std::string& commit) const {
  if (revision == commit) return ok_status();  // huggingface_hub writes no ref for a bare commit
  if (read_ref(revision) == commit) return ok_status();
  const fs::path path = root_ / "refs" / revision;
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return io_error("cannot create " + path.parent_path().string() + ": " + ec.message());
  // Write then rename, so a concurrent reader never sees a half-written hash.
  const fs::path tmp = temp_sibling(path);
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << commit;
    if (!out.flush()) return io_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, path, ec);
  if (ec) return io_error("cannot rename " + tmp.string() + " to " + path.string() + ": " + ec.message());
  return ok_status();
}

bool HfCacheRepo::has_file(const std::string& commit, const std::string& file) const {
  std::error_code ec;
  return fs::is_regular_file(snapshot_dir(commit) / file, ec);  // follows the symlink
}

bool HfCacheRepo::is_known_missing(const std::string& commit, const std::string& file) const {
  std::error_code ec;
  return fs::exists(root_ / ".no_exist" / commit / file, ec);
}

Status HfCacheRepo::mark_missing(const std::string& commit, const std::string& file) const {
  const fs::path path = root_ / ".no_exist" / commit / file;
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return io_error("cannot create " + path.parent_path().string() + ": " + ec.message());
  std::ofstream out(path, std::ios::app);
  if (!out) return io_error("cannot create " + path.string());
  return ok_status();
}

Status HfCacheRepo::link_blob(const std::string& commit, const std::string& file, const std::string& etag) const {
  const fs::path link = snapshot_dir(commit) / file;
  std::error_code ec;
  fs::create_directories(link.parent_path(), ec);
  if (ec) return io_error("cannot create " + link.parent_path().string() + ": " + ec.message());
  // snapshots/<commit>/a/b/file -> ../../../../blobs/<etag>: one ".." per directory below root.
  fs::path target;
  const fs::path rel_dir = fs::path("snapshots") / commit / fs::path(file).parent_path();
  for (const auto& part : rel_dir) {
    if (!part.empty()) target /= "..";
  }
  target /= fs::path("blobs") / etag;
  // Made under a temporary name, then renamed over the link: concurrent resolvers never see a
  // missing file, and never write through an existing link into its blob.
  const fs::path tmp = temp_sibling(link);
  fs::create_symlink(target, tmp, ec);
  if (ec) {
    // No symlinks here (some network file systems): keep a copy, as huggingface_hub does.
    fs::copy_file(blob_path(etag), tmp, ec);
    if (ec) return io_error("cannot link or copy " + blob_path(etag).string() + " to " + link.string() + ": " + ec.message());
  }
  fs::rename(tmp, link, ec);
  if (ec) {
    const std::string reason = ec.message();
    fs::remove(tmp, ec);
    return io_error("cannot create " + link.string() + ": " + reason);
  }
  return ok_status();
}

Result<BlobLock> BlobLock::acquire(const fs::path& path) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return io_error("cannot create " + path.parent_path().string() + ": " + ec.message());
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return errno_status("cannot open lock file", path);
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    Status status = errno_status("cannot lock", path);
    ::close(fd);
    return status;
  }
  return BlobLock(fd);
}

BlobLock::~BlobLock() {
  if (fd_ >= 0) {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
}

}  // namespace embd::io
