// A tiny blocking HTTP/1.1 client over POSIX sockets for the server tests: exact control over
// the bytes sent (slow clients, malformed requests, pipelining), bounded waits (never hangs).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace embd::server::testing {

struct RawResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

inline std::string make_request(std::string_view method, std::string_view target,
                                std::string_view body = {}, std::string_view extra_headers = {},
                                bool keep_alive = true) {
  std::string r;
  r.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  if (!body.empty() || method == "POST") {
    r.append("Content-Type: application/json\r\nContent-Length: ")
        .append(std::to_string(body.size()))
        .append("\r\n");
  }
  if (!keep_alive) r.append("Connection: close\r\n");
  r.append(extra_headers);
  r.append("\r\n");
  r.append(body);
  return r;
}

class Connection {
 public:
  explicit Connection(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
    int one = 1;
    if (fd_ >= 0) ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  ~Connection() { close(); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  Connection(Connection&& o) noexcept : fd_(o.fd_), buffer_(std::move(o.buffer_)) { o.fd_ = -1; }

  bool connected() const { return fd_ >= 0; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Sends FIN: the client will send nothing more (the server sees EOF after the bytes sent).
  void shutdown_write() {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
  }
  // Closes with RST (SO_LINGER 0): an abrupt client failure.
  void reset() {
    if (fd_ < 0) return;
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    close();
  }

  bool send_all(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Reads one response (Content-Length framed). nullopt on timeout, EOF or garbage.
  std::optional<RawResponse> read_response(std::chrono::milliseconds timeout =
                                               std::chrono::seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::size_t header_end;
    while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill(deadline)) return std::nullopt;
    }
    RawResponse r;
    std::string_view head(buffer_.data(), header_end);
    if (head.size() < 12 || head.substr(0, 5) != "HTTP/") return std::nullopt;
    r.status = std::stoi(std::string(head.substr(9, 3)));
    std::size_t pos = head.find("\r\n");
    while (pos != std::string_view::npos && pos < head.size()) {
      std::size_t next = head.find("\r\n", pos + 2);
      std::string_view line = head.substr(pos + 2, (next == std::string_view::npos ? head.size() : next) - pos - 2);
      std::size_t colon = line.find(':');
      if (colon != std::string_view::npos) {
        std::string name(line.substr(0, colon));
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        r.headers[name] = std::string(value);
      }
      pos = next;
    }
    std::size_t length = 0;
    if (auto it = r.headers.find("content-length"); it != r.headers.end()) {
      length = std::stoull(it->second);
    }
    while (buffer_.size() < header_end + 4 + length) {
      if (!fill(deadline)) return std::nullopt;
    }
    r.body = buffer_.substr(header_end + 4, length);
    buffer_.erase(0, header_end + 4 + length);
    return r;
  }

  // True when the server closed the connection (EOF) within the timeout.
  bool closed_by_peer(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char tmp[4096];
    for (;;) {
      const ssize_t n = receive(deadline, tmp, sizeof(tmp));
      if (n < 0) return false;  // timed out
      if (n == 0) return true;
      buffer_.append(tmp, static_cast<std::size_t>(n));
    }
  }

 private:
  bool fill(std::chrono::steady_clock::time_point deadline) {
    char tmp[65536];
    const ssize_t n = receive(deadline, tmp, sizeof(tmp));
    if (n <= 0) return false;
    buffer_.append(tmp, static_cast<std::size_t>(n));
    return true;
  }

  // Bytes read (> 0), 0 at EOF or a connection error, -1 when the deadline passed. A signal
  // (EINTR: e.g. libFuzzer's timer) only retries: it is neither an EOF nor a timeout.
  ssize_t receive(std::chrono::steady_clock::time_point deadline, char* out, std::size_t size) {
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() < 0) return -1;
      pollfd p{fd_, POLLIN, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) return 0;
      if (ready == 0) return -1;
      const ssize_t n = ::recv(fd_, out, size, 0);
      if (n < 0 && errno == EINTR) continue;
      return n < 0 ? 0 : n;
    }
  }

  int fd_ = -1;
  std::string buffer_;
};

// One request on a fresh connection.
inline std::optional<RawResponse> request(std::uint16_t port, std::string_view method,
                                          std::string_view target, std::string_view body = {},
                                          std::string_view extra_headers = {}) {
  Connection c(port);
  if (!c.connected() || !c.send_all(make_request(method, target, body, extra_headers, false))) {
    return std::nullopt;
  }
  return c.read_response();
}

}  // namespace embd::server::testing
