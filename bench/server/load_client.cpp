#include "load_client.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange unincluded

#include <boost/asio.hpp>

namespace embd::bench {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

std::string make_post(std::string_view target, std::string_view body) {
  std::string r;
  r.append("POST ").append(target).append(" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  r.append("Content-Type: application/json\r\nContent-Length: ");
  r.append(std::to_string(body.size())).append("\r\n\r\n").append(body);
  return r;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const char c = (a[i] >= 'A' && a[i] <= 'Z') ? char(a[i] - 'A' + 'a') : a[i];
    if (c != b[i]) return false;
  }
  return true;
}

// What the client needs from a response head.
struct Head {
  int status = 0;
  std::size_t content_length = 0;
  double total = 0, tokenize = 0, queue = 0, inference = 0;
};

std::optional<Head> parse_head(std::string_view head) {
  if (head.size() < 12 || head.substr(0, 5) != "HTTP/") return std::nullopt;
  Head h;
  h.status = std::atoi(std::string(head.substr(9, 3)).c_str());
  std::size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos + 2 < head.size()) {
    const std::size_t next = head.find("\r\n", pos + 2);
    const std::string_view line =
        head.substr(pos + 2, (next == std::string_view::npos ? head.size() : next) - pos - 2);
    pos = next;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, colon);
    std::string value(line.substr(colon + 1));
    if (iequals(name, "content-length")) h.content_length = std::strtoull(value.c_str(), nullptr, 10);
    else if (iequals(name, "x-total-time")) h.total = std::atof(value.c_str());
    else if (iequals(name, "x-tokenization-time")) h.tokenize = std::atof(value.c_str());
    else if (iequals(name, "x-queue-time")) h.queue = std::atof(value.c_str());
    else if (iequals(name, "x-inference-time")) h.inference = std::atof(value.c_str());
  }
  return h;
}

// One keep-alive connection, driven by its thread's io_context (single-threaded: no strand).
class Connection {
 public:
  Connection(net::io_context& io, const LoadPlan& plan, const std::vector<std::string>& requests,
             LoadRun& out, std::atomic<bool>& reported)
      : socket_(io), plan_(plan), requests_(requests), out_(out), reported_(reported) {}

  bool connect() {
    boost::system::error_code ec;
    socket_.close(ec);
    socket_.connect(tcp::endpoint(net::ip::address_v4::loopback(), plan_.port), ec);
    if (ec) return false;
    socket_.set_option(tcp::no_delay(true), ec);
    buffer_.clear();
    return true;
  }

  // Sends the next request, or stops when the plan is over.
  void start_next() {
    const auto index = plan_.next();
    if (!index) return;
    if (!socket_.is_open() && !connect()) return fail("cannot connect");
    request_ = &requests_[*index % requests_.size()];
    head_end_ = std::string::npos;
    t0_ = Clock::now();
    net::async_write(socket_, net::buffer(*request_), [this](boost::system::error_code ec, std::size_t) {
      if (ec) return fail("write failed: " + ec.message());
      read_more();
    });
  }

 private:
  void read_more() {
    socket_.async_read_some(net::buffer(chunk_), [this](boost::system::error_code ec, std::size_t n) {
      if (ec) return fail("read failed: " + ec.message());
      buffer_.append(chunk_.data(), n);
      on_bytes();
    });
  }

  void on_bytes() {
    if (head_end_ == std::string::npos) {
      const std::size_t end = buffer_.find("\r\n\r\n");
      if (end == std::string::npos) return read_more();
      auto head = parse_head(std::string_view(buffer_).substr(0, end));
      if (!head) return fail("malformed response head");
      head_ = *head;
      head_end_ = end + 4;
    }
    const std::size_t size = head_end_ + head_.content_length;
    if (buffer_.size() < size) return read_more();
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0_).count();
    if (head_.status != 200) {
      fail("status " + std::to_string(head_.status) + " " +
           buffer_.substr(head_end_, std::min<std::size_t>(200, head_.content_length)));
      return;
    }
    buffer_.erase(0, size);
    out_.latency_ms.push_back(ms);
    out_.total_ms += head_.total;
    out_.tokenize_ms += head_.tokenize;
    out_.queue_ms += head_.queue;
    out_.inference_ms += head_.inference;
    start_next();
  }

  // Counts the failure, drops the connection (the next request reconnects) and goes on.
  void fail(const std::string& what) {
    if (!reported_.exchange(true)) std::fprintf(stderr, "first failure: %s\n", what.c_str());
    ++out_.failures;
    boost::system::error_code ignored;
    socket_.close(ignored);
    buffer_.clear();
    // Posted, not called: a server that refuses every connection must not recurse.
    net::post(socket_.get_executor(), [this] { start_next(); });
  }

  tcp::socket socket_;
  const LoadPlan& plan_;
  const std::vector<std::string>& requests_;
  LoadRun& out_;
  std::atomic<bool>& reported_;
  const std::string* request_ = nullptr;
  std::string buffer_;
  std::array<char, 65536> chunk_{};
  std::size_t head_end_ = std::string::npos;
  Head head_;
  Clock::time_point t0_;
};

}  // namespace

LoadRun run_load(const LoadPlan& plan) {
  std::vector<std::string> requests;
  for (const auto& body : *plan.bodies) requests.push_back(make_post(plan.target, body));
  const int threads = std::clamp(plan.threads, 1, std::max(1, plan.connections));
  std::vector<LoadRun> runs(threads);
  std::atomic<int> ready{threads};
  std::atomic<bool> go{false}, reported{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      net::io_context io(1);
      std::vector<std::unique_ptr<Connection>> connections;
      for (int c = t; c < plan.connections; c += threads) {
        connections.push_back(std::make_unique<Connection>(io, plan, requests, runs[t], reported));
        connections.back()->connect();  // a failure here shows as the first request's
      }
      if (ready.fetch_sub(1) == 1) {
        if (plan.on_start) plan.on_start();
        go.store(true, std::memory_order_release);
        go.notify_all();
      }
      go.wait(false, std::memory_order_acquire);
      for (auto& c : connections) c->start_next();
      io.run();
    });
  }
  for (auto& w : workers) w.join();
  LoadRun all;
  for (auto& r : runs) {
    all.latency_ms.insert(all.latency_ms.end(), r.latency_ms.begin(), r.latency_ms.end());
    all.failures += r.failures;
    all.total_ms += r.total_ms;
    all.tokenize_ms += r.tokenize_ms;
    all.queue_ms += r.queue_ms;
    all.inference_ms += r.inference_ms;
  }
  return all;
}

}  // namespace embd::bench
