// The HTTP layer alone, with a scripted handler: keep-alive, pipelining, limits, malformed
// input, slow and idle clients, disconnect detection and graceful shutdown.
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "server/http_server.h"
#include "test_client.h"

namespace embd::server {
namespace {

using namespace std::chrono_literals;
using testing::Connection;
using testing::make_request;

class HttpServerTest : public ::testing::Test {
 protected:
  void start(HttpServerOptions options = {}) {
    options.host = "127.0.0.1";
    options.port = 0;
    auto server = HttpServer::start(
        options, [this](HttpRequest&& r, std::shared_ptr<HttpExchange> e) { handle(std::move(r), e); },
        [](int status, std::string_view, std::string message) {
          HttpResponse response;
          response.status = status;
          response.body = "{\"error\":\"" + message + "\"}";
          return response;
        });
    ASSERT_TRUE(server.ok()) << server.status().to_string();
    server_ = std::move(server).value();
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }

  void handle(HttpRequest&& r, std::shared_ptr<HttpExchange> exchange) {
    if (r.path() == "/hold") {
      exchange->on_disconnect([this] { disconnects_.fetch_add(1); });
      std::lock_guard lock(mu_);
      held_.push_back(std::move(exchange));
      cv_.notify_all();
      return;
    }
    if (r.path() == "/drop") return;  // the exchange dies unanswered
    if (r.path() == "/pieces") {
      HttpResponse response{200, "text/plain", {}, "ab"};
      response.body_more = {"cd", "", std::string(100000, 'e'), "f"};
      exchange->respond(std::move(response));
      return;
    }
    if (r.path() == "/later") {
      std::thread([exchange] {
        std::this_thread::sleep_for(20ms);
        exchange->respond({200, "text/plain", {}, "later"});
      }).detach();
      return;
    }
    HttpResponse response;
    response.content_type = "text/plain";
    response.headers.push_back({"x-echo", "1"});
    response.body = r.method + " " + r.target + " " + std::to_string(r.body.size());
    exchange->respond(std::move(response));
  }

  std::shared_ptr<HttpExchange> wait_held() {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, 10s, [this] { return !held_.empty(); })) return nullptr;
    auto e = held_.front();
    held_.erase(held_.begin());
    return e;
  }

  // A client sends /hold and hangs up; returns the held exchange once the server has noticed
  // (the exchange's disconnect callback ran), null on failure.
  std::shared_ptr<HttpExchange> hold_then_disconnect() {
    Connection c(port_);
    if (!c.send_all(make_request("GET", "/hold"))) return nullptr;
    auto held = wait_held();
    if (!held) return nullptr;
    const int before = disconnects_.load();
    c.close();
    for (int i = 0; i < 1000 && disconnects_.load() == before; ++i) std::this_thread::sleep_for(5ms);
    EXPECT_EQ(disconnects_.load(), before + 1);
    return held;
  }

  void expect_serves() {
    auto r = testing::request(port_, "GET", "/ok");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "GET /ok 0");
  }

  std::unique_ptr<HttpServer> server_;
  std::uint16_t port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<HttpExchange>> held_;
  std::atomic<int> disconnects_{0};
};

TEST_F(HttpServerTest, KeepAliveAndPipelining) {
  start();
  Connection c(port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send_all(make_request("POST", "/a", "xyz") + make_request("GET", "/later") +
                         make_request("GET", "/c?q=1")));
  auto a = c.read_response();
  auto b = c.read_response();
  auto d = c.read_response();
  ASSERT_TRUE(a && b && d);
  EXPECT_EQ(a->body, "POST /a 3");
  EXPECT_EQ(a->header("x-echo"), "1");
  EXPECT_EQ(b->body, "later");
  EXPECT_EQ(d->body, "GET /c?q=1 0");
  ASSERT_TRUE(c.send_all(make_request("GET", "/again")));
  auto e = c.read_response();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->body, "GET /again 0");
}

// A body in pieces (HttpResponse::body_more) arrives as one body, its length counted whole, and
// the connection goes on.
TEST_F(HttpServerTest, BodyInPiecesArrivesWhole) {
  start();
  Connection c(port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send_all(make_request("GET", "/pieces") + make_request("GET", "/next")));
  auto a = c.read_response();
  auto b = c.read_response();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(a->header("content-length"), std::to_string(100005));
  EXPECT_EQ(a->body, "abcd" + std::string(100000, 'e') + "f");
  EXPECT_EQ(b->body, "GET /next 0");
}

// The response head is written by the server itself (not Beast's serializer): the fields a
// client relies on, and HTTP/1.0's opposite keep-alive default.
TEST_F(HttpServerTest, ResponseHeadFieldsAndConnectionSemantics) {
  start();
  Connection c(port_);
  ASSERT_TRUE(c.send_all(make_request("POST", "/head", "abcd")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("server"), "embd");
  EXPECT_EQ(r->header("content-type"), "text/plain");
  EXPECT_EQ(r->header("content-length"), std::to_string(r->body.size()));
  EXPECT_EQ(r->header("x-echo"), "1");
  EXPECT_EQ(r->header("connection"), "");  // HTTP/1.1 keeps the connection by default

  // HTTP/1.0 without keep-alive: the server says nothing and closes after the response.
  Connection old(port_);
  ASSERT_TRUE(old.send_all("GET /ten HTTP/1.0\r\n\r\n"));
  auto ten = old.read_response();
  ASSERT_TRUE(ten);
  EXPECT_EQ(ten->body, "GET /ten 0");
  EXPECT_EQ(ten->header("connection"), "");
  EXPECT_TRUE(old.closed_by_peer(5s));

  // HTTP/1.0 asking for keep-alive gets it, and the connection serves another request.
  Connection kept(port_);
  ASSERT_TRUE(kept.send_all("GET /k1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  auto k1 = kept.read_response();
  ASSERT_TRUE(k1);
  EXPECT_EQ(k1->header("connection"), "keep-alive");
  ASSERT_TRUE(kept.send_all("GET /k2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  auto k2 = kept.read_response();
  ASSERT_TRUE(k2);
  EXPECT_EQ(k2->body, "GET /k2 0");

  // HTTP/1.1 asking to close: told so, then closed.
  Connection closing(port_);
  ASSERT_TRUE(closing.send_all(make_request("GET", "/bye", {}, {}, /*keep_alive=*/false)));
  auto bye = closing.read_response();
  ASSERT_TRUE(bye);
  EXPECT_EQ(bye->header("connection"), "close");
  EXPECT_TRUE(closing.closed_by_peer(5s));
}

// Keep-alive connections that stay silent past idle_timeout are closed by the periodic sweep.
TEST_F(HttpServerTest, IdleKeepAliveConnectionClosesAfterIdleTimeout) {
  HttpServerOptions o;
  o.idle_timeout = 300ms;
  start(o);
  Connection c(port_);
  ASSERT_TRUE(c.send_all(make_request("GET", "/one")));
  ASSERT_TRUE(c.read_response());
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.closed_by_peer(10s));
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 250ms);  // not before its timeout (the sweep may be up to a period late)
  expect_serves();
}

TEST_F(HttpServerTest, BodyOverLimitIs413AndServerStaysUp) {
  HttpServerOptions o;
  o.body_limit = 1u << 20;
  start(o);
  Connection c(port_);
  const std::string body(10u << 20, 'x');
  c.send_all(make_request("POST", "/embed", body));  // the server may stop reading early
  auto r = c.read_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(r->body.find("length limit"), std::string::npos);
  expect_serves();
}

TEST_F(HttpServerTest, MalformedRequestsGet400) {
  start();
  const char* bad[] = {
      "GARBAGE\r\n\r\n",
      "POST /x HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
      "GET /x HTTP/9.9\r\n\r\n",
      "POST /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
  };
  for (const char* request : bad) {
    Connection c(port_);
    ASSERT_TRUE(c.send_all(request));
    auto r = c.read_response();
    ASSERT_TRUE(r.has_value()) << request;
    EXPECT_EQ(r->status, 400) << request;
    EXPECT_TRUE(c.closed_by_peer(5s)) << request;
  }
  expect_serves();
}

TEST_F(HttpServerTest, HugeHeaderIs431) {
  start();
  Connection c(port_);
  ASSERT_TRUE(c.send_all("GET /x HTTP/1.1\r\nX-Big: " + std::string(40000, 'a') + "\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 431);
  expect_serves();
}

TEST_F(HttpServerTest, SlowClientByteAtATimeIsServedWithoutBlockingOthers) {
  start();
  std::atomic<bool> slow_ok{false};
  std::thread slow([&] {
    Connection c(port_);
    for (char ch : make_request("POST", "/slow", "{\"inputs\":\"a\"}")) {
      if (!c.send_all(std::string_view(&ch, 1))) return;
      std::this_thread::sleep_for(2ms);
    }
    auto r = c.read_response();
    slow_ok = r && r->status == 200 && r->body == "POST /slow 14";
  });
  for (int i = 0; i < 5; ++i) expect_serves();
  slow.join();
  EXPECT_TRUE(slow_ok);
}

TEST_F(HttpServerTest, ManyIdleConnections) {
  start();
  std::vector<Connection> idle;
  for (int i = 0; i < 200; ++i) {
    idle.emplace_back(port_);
    ASSERT_TRUE(idle.back().connected()) << i;
  }
  expect_serves();
  for (int i = 0; i < 200; i += 37) {
    ASSERT_TRUE(idle[i].send_all(make_request("GET", "/idle")));
    auto r = idle[i].read_response();
    ASSERT_TRUE(r.has_value()) << i;
    EXPECT_EQ(r->body, "GET /idle 0");
  }
}

// Past max_connections a new connection gets 503 and is closed, the open ones keep working, and
// a slot freed by a close is usable again.
TEST_F(HttpServerTest, ConnectionsBeyondTheCapGet503AndClose) {
  HttpServerOptions o;
  o.max_connections = 3;
  start(o);
  std::vector<Connection> open;
  for (int i = 0; i < 3; ++i) {
    open.emplace_back(port_);
    // A served request proves the server holds this connection (accepted and registered).
    ASSERT_TRUE(open.back().send_all(make_request("GET", "/first")));
    ASSERT_TRUE(open.back().read_response().has_value()) << i;
  }
  EXPECT_EQ(server_->open_connections(), 3u);
  for (int i = 0; i < 5; ++i) {
    Connection extra(port_);
    ASSERT_TRUE(extra.connected());
    auto refused = extra.read_response(5s);
    ASSERT_TRUE(refused.has_value()) << i;
    EXPECT_EQ(refused->status, 503);
    EXPECT_NE(refused->body.find("too many open connections"), std::string::npos) << refused->body;
    EXPECT_EQ(refused->header("connection"), "close");
    EXPECT_EQ(refused->header("retry-after"), "1");
    EXPECT_TRUE(extra.closed_by_peer(5s));
  }
  EXPECT_EQ(server_->open_connections(), 3u);
  for (auto& c : open) {
    ASSERT_TRUE(c.send_all(make_request("GET", "/still")));
    auto r = c.read_response();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->body, "GET /still 0");
  }
  open.pop_back();  // the server sees EOF and closes its end
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (server_->open_connections() > 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(server_->open_connections(), 2u);
  expect_serves();
}

TEST_F(HttpServerTest, ReadTimeoutClosesStalledRequest) {
  HttpServerOptions o;
  o.read_timeout = 200ms;
  start(o);
  Connection c(port_);
  ASSERT_TRUE(c.send_all("GET /x HTTP/1.1\r\nHost: a\r\n"));  // never finished
  EXPECT_TRUE(c.closed_by_peer(10s));
  expect_serves();
}

TEST_F(HttpServerTest, ClientDisconnectRunsCallbackAndOthersAreUndisturbed) {
  start();
  auto held = hold_then_disconnect();
  ASSERT_TRUE(held);
  held->respond({200, "text/plain", {}, "too late"});  // goes nowhere, harmlessly
  expect_serves();
}

TEST_F(HttpServerTest, DroppedExchangeAnswers500) {
  start();
  auto r = testing::request(port_, "GET", "/drop");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 500);
}

TEST_F(HttpServerTest, ExpectContinue) {
  start();
  Connection c(port_);
  ASSERT_TRUE(c.send_all(
      "POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = c.read_response();
  ASSERT_TRUE(interim.has_value());
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(c.send_all("abcd"));
  auto r = c.read_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "POST /e 4");
}

// I/O threads that poll before they sleep: responses handed over from other threads, pipelined
// requests and disconnects work as with sleeping threads, threads that slept after their spin
// wake for new work, and shutdown still stops the polling threads.
TEST_F(HttpServerTest, IdleSpinServesRequestsAndShutsDown) {
  HttpServerOptions options;
  options.io_threads = 2;
  options.idle_spin = 300us;
  start(options);
  for (int round = 0; round < 3; ++round) {
    Connection c(port_);
    ASSERT_TRUE(c.send_all(make_request("GET", "/later") + make_request("GET", "/x")));
    auto a = c.read_response();
    auto b = c.read_response();
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->body, "later");
    EXPECT_EQ(b->body, "GET /x 0");
    expect_serves();
    // Longer than the spin: the threads sleep in between and must still wake for new work.
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(hold_then_disconnect());
  Connection busy(port_);
  ASSERT_TRUE(busy.send_all(make_request("GET", "/hold")));
  auto held = wait_held();
  ASSERT_TRUE(held);
  server_->begin_shutdown();
  held->respond({200, "text/plain", {}, "finished"});
  auto r = busy.read_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "finished");
  held.reset();
  EXPECT_TRUE(server_->wait_drained(5s));
  server_.reset();  // joins the spinning threads
}

TEST_F(HttpServerTest, GracefulShutdownAnswersInFlightRequests) {
  start();
  Connection idle(port_);
  Connection busy(port_);
  ASSERT_TRUE(busy.send_all(make_request("GET", "/hold")));
  auto held = wait_held();
  ASSERT_TRUE(held);
  server_->begin_shutdown();
  EXPECT_TRUE(idle.closed_by_peer(5s));  // idle connections close at once
  Connection late(port_);
  if (late.connected()) {
    late.send_all(make_request("GET", "/late"));
    EXPECT_FALSE(late.read_response(2s).has_value());  // nobody accepts it
  }
  held->respond({200, "text/plain", {}, "finished"});
  auto r = busy.read_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "finished");
  EXPECT_EQ(r->header("connection"), "close");
  held.reset();
  EXPECT_TRUE(server_->wait_drained(5s));
  EXPECT_EQ(server_->wait_for_signal(), 0);
}

}  // namespace
}  // namespace embd::server
