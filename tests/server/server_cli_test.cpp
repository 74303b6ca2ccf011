// The `embd serve` binary: flags and environment, the ready line with --port 0, serving, and
// a graceful exit 0 on SIGTERM with a request in flight. Skipped when bin/embd is not built.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_client.h"

namespace embd::server {
namespace {

const std::string kBinary = std::string(EMBD_BINARY_DIR) + "/bin/embd";
const std::string kModel = std::string(EMBD_FIXTURES_DIR) + "/models/tiny-jina";

struct Child {
  pid_t pid = -1;
  FILE* out = nullptr;
};

// Starts `embd serve` with stdout on a pipe; extra environment as NAME=VALUE strings.
Child spawn(std::vector<std::string> args, std::vector<std::string> env) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    for (auto& e : env) putenv(e.data());
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(kBinary.c_str()));
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(kBinary.c_str(), argv.data());
    _exit(127);
  }
  close(fds[1]);
  return {pid, fdopen(fds[0], "r")};
}

// Reads the ready line and returns the port in it (0 when the process ended first).
std::uint16_t ready_port(FILE* out, std::string& line) {
  char buffer[1024];
  while (std::fgets(buffer, sizeof(buffer), out)) {
    line = buffer;
    auto at = line.find("listening on http://");
    if (at == std::string::npos) continue;
    auto colon = line.find(':', at + 20);
    return static_cast<std::uint16_t>(std::stoi(line.substr(colon + 1)));
  }
  return 0;
}

int wait_exit(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(EmbdServe, ReadyLineServesAndExitsZeroOnSigterm) {
  if (!std::filesystem::exists(kBinary)) GTEST_SKIP() << kBinary << " not built";
  // The port comes from the environment (PORT), the rest from flags.
  Child child = spawn({"serve", "--model", kModel, "--host", "127.0.0.1", "--threads", "1",
                       "--max-client-batch-size", "4"},
                      {"PORT=0", "API_KEY=k"});
  ASSERT_GT(child.pid, 0);
  std::string line;
  const std::uint16_t port = ready_port(child.out, line);
  ASSERT_NE(port, 0) << "no ready line; last: " << line;
  auto health = testing::request(port, "GET", "/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto r = testing::request(port, "POST", "/embed", R"({"inputs": ["a", "b"]})",
                            "Authorization: Bearer k\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(nlohmann::json::parse(r->body).size(), 2u);
  auto unauthorized = testing::request(port, "POST", "/embed", R"({"inputs": "a"})");
  ASSERT_TRUE(unauthorized);
  EXPECT_EQ(unauthorized->status, 401);
  auto too_many = testing::request(port, "POST", "/embed", R"({"inputs": ["a","b","c","d","e"]})",
                                   "Authorization: Bearer k\r\n");
  ASSERT_TRUE(too_many);
  EXPECT_EQ(too_many->status, 422);

  // An idle keep-alive connection does not hold the shutdown up: it is closed, exit 0.
  testing::Connection c(port);
  ASSERT_TRUE(c.send_all(testing::make_request("POST", "/embed", R"({"inputs": "last one"})",
                                               "Authorization: Bearer k\r\n")));
  auto last = c.read_response();
  ASSERT_TRUE(last);
  EXPECT_EQ(last->status, 200);
  kill(child.pid, SIGTERM);
  EXPECT_TRUE(c.closed_by_peer(std::chrono::seconds(10)));
  EXPECT_EQ(wait_exit(child.pid), 0);
  std::fclose(child.out);
}

TEST(EmbdServe, MaxConnectionsFromTheEnvironment) {
  if (!std::filesystem::exists(kBinary)) GTEST_SKIP() << kBinary << " not built";
  Child child = spawn({"serve", "--model", kModel, "--host", "127.0.0.1", "--port", "0",
                       "--threads", "1"},
                      {"EMBD_MAX_CONNECTIONS=1"});
  ASSERT_GT(child.pid, 0);
  std::string line;
  const std::uint16_t port = ready_port(child.out, line);
  ASSERT_NE(port, 0) << "no ready line; last: " << line;
  testing::Connection held(port);
  ASSERT_TRUE(held.send_all(testing::make_request("GET", "/health")));
  auto first = held.read_response();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200);
  testing::Connection extra(port);
  auto refused = extra.read_response(std::chrono::seconds(10));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  EXPECT_EQ(nlohmann::json::parse(refused->body)["error_type"], "Unhealthy") << refused->body;
  kill(child.pid, SIGTERM);
  EXPECT_EQ(wait_exit(child.pid), 0);
  std::fclose(child.out);
}

TEST(EmbdServe, BadQueryLaneFromTheEnvironmentExitsNonZero) {
  if (!std::filesystem::exists(kBinary)) GTEST_SKIP() << kBinary << " not built";
  Child child = spawn({"serve", "--model", kModel, "--host", "127.0.0.1", "--port", "0",
                       "--threads", "1"},
                      {"EMBD_QUERY_LANE=sometimes"});
  ASSERT_GT(child.pid, 0);
  std::string line;
  EXPECT_EQ(ready_port(child.out, line), 0);
  EXPECT_NE(wait_exit(child.pid), 0);
  std::fclose(child.out);
}

TEST(EmbdServe, BadModelExitsNonZero) {
  if (!std::filesystem::exists(kBinary)) GTEST_SKIP() << kBinary << " not built";
  Child child = spawn({"serve", "--model", "/nonexistent/model", "--host", "127.0.0.1",
                       "--port", "0", "--offline"}, {});
  ASSERT_GT(child.pid, 0);
  std::string line;
  EXPECT_EQ(ready_port(child.out, line), 0);
  EXPECT_NE(wait_exit(child.pid), 0);
  std::fclose(child.out);
}

}  // namespace
}  // namespace embd::server
