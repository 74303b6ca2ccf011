#include "load_client.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <memory>
#include <string_view>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange unincluded

#include <boost/asio.hpp>
#include <boost/beast/core/string.hpp>

#include "server/test_client.h"

namespace embd::bench {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

// Beast's case-insensitive comparison (Boost 1.74's beast::string_view is not std's).
bool iequals(std::string_view a, std::string_view b) {
  return boost::beast::iequals({a.data(), a.size()}, {b.data(), b.size()});
}

// A header's value as a number, leading spaces skipped; `fallback` when it is not one.
template <typename T>
T header_number(std::string_view value, T fallback) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  T out = fallback;
  if (std::from_chars(value.data(), value.data() + value.size(), out).ec != std::errc()) return fallback;
  return out;
}

// What the client needs from a response head. Parsed here rather than with test_client.h's
// reader, which builds a map of every header: this runs once per request of the load.
struct Head {
  int status = 0;
  std::size_t content_length = 0;
  double total = 0, compute = 0, tokenize = 0, queue = 0, inference = 0;
};

std::optional<Head> parse_head(std::string_view head) {
  if (head.size() < 12 || head.substr(0, 5) != "HTTP/") return std::nullopt;
  Head h;
  h.status = header_number(head.substr(9, 3), 0);
  std::size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos + 2 < head.size()) {
    const std::size_t next = head.find("\r\n", pos + 2);
    const std::string_view line =
        head.substr(pos + 2, (next == std::string_view::npos ? head.size() : next) - pos - 2);
    pos = next;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = line.substr(colon + 1);
    if (iequals(name, "content-length")) h.content_length = header_number<std::size_t>(value, 0);
    else if (iequals(name, "x-total-time")) h.total = header_number(value, 0.0);
    else if (iequals(name, "x-compute-time")) h.compute = header_number(value, 0.0);
    else if (iequals(name, "x-tokenization-time")) h.tokenize = header_number(value, 0.0);
    else if (iequals(name, "x-queue-time")) h.queue = header_number(value, 0.0);
    else if (iequals(name, "x-inference-time")) h.inference = header_number(value, 0.0);
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
    out_.compute_ms += head_.compute;
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
  for (const auto& body : *plan.bodies) {
    requests.push_back(server::testing::make_request("POST", plan.target, body));
  }
  const int threads = std::clamp(plan.threads, 1, std::max(1, plan.connections));
  std::vector<LoadRun> runs(threads);
  StartLine line(threads, plan.on_start);
  std::atomic<bool> reported{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      net::io_context io(1);
      std::vector<std::unique_ptr<Connection>> connections;
      for (int c = t; c < plan.connections; c += threads) {
        connections.push_back(std::make_unique<Connection>(io, plan, requests, runs[t], reported));
        connections.back()->connect();  // a failure here shows as the first request's
      }
      line.arrive_and_wait();
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
    all.compute_ms += r.compute_ms;
    all.tokenize_ms += r.tokenize_ms;
    all.queue_ms += r.queue_ms;
    all.inference_ms += r.inference_ms;
  }
  return all;
}

}  // namespace embd::bench
