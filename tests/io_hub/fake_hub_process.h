// Test helper: runs tests/io_hub/fake_hub.py (/usr/bin/python3) as a child process on an
// ephemeral 127.0.0.1 port, and reads its request log from /_stats. The process is killed and
// reaped when the object dies. Not thread-safe; one per test.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/http_client.h"

namespace embd::testing {

class FakeHubProcess {
 public:
  // Starts the server with `args` (e.g. {"--repo", "org/name=DIR"}); ok() says if it listens.
  explicit FakeHubProcess(const std::vector<std::string>& args) {
    int fds[2];
    if (::pipe(fds) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], STDOUT_FILENO);
      ::close(fds[0]);
      ::close(fds[1]);
      std::vector<std::string> argv_s = {"/usr/bin/python3", EMBD_FAKE_HUB};
      argv_s.insert(argv_s.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : argv_s) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    if (pid_ < 0) {
      ::close(fds[0]);
      return;
    }
    // The first line is "PORT <n>"; EOF first means the server died.
    std::FILE* out = ::fdopen(fds[0], "r");
    char line[128] = {0};
    if (out != nullptr && std::fgets(line, sizeof line, out) != nullptr) {
      std::sscanf(line, "PORT %d", &port_);
    }
    if (out != nullptr) std::fclose(out);
  }
  ~FakeHubProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  FakeHubProcess(const FakeHubProcess&) = delete;
  FakeHubProcess& operator=(const FakeHubProcess&) = delete;

  bool ok() const { return port_ > 0; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // {"requests": [{method, path, range, authorization}...], "etags": {repo: {file: etag}}}
  nlohmann::json stats() const {
    io::HttpRequest request;
    request.url = url() + "/_stats";
    auto response = io::http_fetch(request);
    if (!response.ok() || response->status != 200) return nlohmann::json::object();
    return nlohmann::json::parse(response->body, nullptr, false);
  }
  std::size_t request_count() const {
    auto s = stats();
    return s.contains("requests") ? s["requests"].size() : 0;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace embd::testing
