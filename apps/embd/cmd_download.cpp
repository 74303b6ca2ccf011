// `embd download`: fetches a Hugging Face model into the hub cache (shared with huggingface_hub)
// and prints the local directory, e.g. for `embd embed --model "$(embd download --model ID)"`.
// Progress goes to stderr, and only when it is a terminal.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "embd/hub.hpp"

namespace embd::cli {
namespace {

struct DownloadFlags {
  std::string model;
  std::string revision;
  std::string cache_dir;
  std::string endpoint;
  bool offline = false;
  bool refresh = false;
  bool quiet = false;
};

std::string human(std::uint64_t bytes) {
  char text[32];
  const double b = static_cast<double>(bytes);
  if (bytes < 1024 * 1024) {
    std::snprintf(text, sizeof text, "%.1f KiB", b / 1024.0);
  } else if (bytes < 1024ull * 1024 * 1024) {
    std::snprintf(text, sizeof text, "%.1f MiB", b / (1024.0 * 1024.0));
  } else {
    std::snprintf(text, sizeof text, "%.2f GiB", b / (1024.0 * 1024.0 * 1024.0));
  }
  return text;
}

// One status line per file, redrawn at most 10 times a second (and at the end of each file).
class ProgressLine {
 public:
  void update(std::string_view file, std::uint64_t done, std::uint64_t total) {
    const auto now = std::chrono::steady_clock::now();
    const bool finished = total != 0 && done >= total;
    if (!finished && file == file_ && now - last_ < std::chrono::milliseconds(100)) return;
    if (file != file_ && !file_.empty() && !ended_) std::fputc('\n', stderr);
    file_ = std::string(file);
    last_ = now;
    if (total != 0) {
      std::fprintf(stderr, "\r%s  %s / %s  %3d%%", file_.c_str(), human(done).c_str(), human(total).c_str(),
                   static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(total)));
    } else {
      std::fprintf(stderr, "\r%s  %s", file_.c_str(), human(done).c_str());
    }
    ended_ = finished;
    if (finished) std::fputc('\n', stderr);
    std::fflush(stderr);
  }
  void finish() {
    if (!file_.empty() && !ended_) std::fputc('\n', stderr);
  }

 private:
  std::string file_;
  std::chrono::steady_clock::time_point last_{};
  bool ended_ = true;
};

int run_download(const DownloadFlags& flags) {
  DownloadOptions options;
  options.revision = flags.revision;
  options.cache_dir = flags.cache_dir;
  options.endpoint = flags.endpoint;
  options.offline = flags.offline;
  options.refresh = flags.refresh;
  auto progress = std::make_shared<ProgressLine>();
  if (!flags.quiet && ::isatty(STDERR_FILENO) != 0) {
    options.progress = [progress](std::string_view file, std::uint64_t done, std::uint64_t total) {
      progress->update(file, done, total);
    };
  }
  auto dir = download_model(flags.model, options);
  progress->finish();
  if (!dir.ok()) {
    std::fprintf(stderr, "embd download: %s\n", dir.status().to_string().c_str());
    return 1;
  }
  std::printf("%s\n", dir->c_str());
  return 0;
}

}  // namespace

CommandRun add_download_command(CLI::App& root) {
  auto* cmd = root.add_subcommand(
      "download", "download a Hugging Face model into the local hub cache and print its directory");
  auto flags = std::make_shared<DownloadFlags>();
  cmd->add_option("-m,--model", flags->model, "Hugging Face id org/name[@revision] (or a local directory)")
      ->required();
  cmd->add_option("--revision", flags->revision, "branch, tag or commit (default: main, or the @revision)");
  cmd->add_option("--cache-dir", flags->cache_dir,
                  "hub cache directory (default: $HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub)");
  cmd->add_option("--endpoint", flags->endpoint, "hub URL (default: $HF_ENDPOINT or https://huggingface.co)");
  cmd->add_flag("--offline", flags->offline, "use only the cache: check that the model is complete there");
  cmd->add_flag("--refresh", flags->refresh,
                "ask the hub for the revision's latest commit even when the cache has a complete copy");
  cmd->add_flag("-q,--quiet", flags->quiet, "no progress on stderr");
  return [flags]() -> int { return run_download(*flags); };
}

}  // namespace embd::cli
