// A small asynchronous HTTP/1.1 server (Boost.Beast/Asio behind a pimpl: no Boost type here).
//
// Design: `io_threads` threads each run their own io_context; each connection is a session on
// one of them (round robin; no thread per connection, no connection handed between threads),
// keep-alive and pipelined requests are served in order.
// A fully read request is handed to the HttpHandler together with an HttpExchange, which the
// handler may complete later from any thread: respond() posts the response back onto the
// session's I/O thread, so I/O threads never block on application work. While a request is
// being processed the session watches its socket (from at most 50 ms after the request was read:
// answers faster than that never pay for the watch); if the client closes it, the exchange's
// disconnect callback runs (the service uses it to cancel engine work). Timeouts are checked by
// a periodic sweep per I/O thread (within a quarter of the shortest timeout).
//
// Limits: request bodies over `body_limit` get 413, headers over `header_limit` 431, malformed
// HTTP 400 (the connection is then closed); a read that does not finish within `read_timeout`
// closes the connection (slow or idle clients). Error bodies come from `make_error`. At most
// `max_connections` connections are open at once: one more is answered 503 (one non-blocking
// write, Connection: close) and closed at once, so clients cannot exhaust file descriptors.
//
// Idle spin: an I/O thread that runs out of work can keep polling its sockets and queue for a
// while before it sleeps in the kernel, so that a response handed over by another thread, or a
// request arriving, is picked up at once instead of after the sleeping thread's wake-up (tens of
// microseconds on a virtual machine). It costs that CPU time whenever the server is idle between
// requests, so it is off unless set.
//
// Shutdown: begin_shutdown() closes the listener and idle connections; requests already read
// are answered (Connection: close), then their connections close. wait_drained() waits for that.
//
// Thread-safety: every public method may be called from any thread. Errors: start() returns a
// Status when the address cannot be bound; nothing else fails or throws.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "embd/status.hpp"

namespace embd::server {

struct HttpHeader {
  std::string name;  // lower-case in requests
  std::string value;
};

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, as sent
  std::vector<HttpHeader> headers;
  std::string body;
  std::chrono::steady_clock::time_point received;  // when the whole request had been read

  // The first header with this (lower-case) name, "" when absent.
  std::string_view header(std::string_view lower_name) const;
  // The target without its query string.
  std::string_view path() const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<HttpHeader> headers;
  std::string body;
  // More of the body, sent after `body` piece by piece as it is (one gathered write): a large
  // body made in pieces goes out without being joined. Content-Length counts both.
  std::vector<std::string> body_more;
};

// One request's reply channel. Thread-safe; the first respond() wins, later calls are ignored.
// Dropping the last reference without responding answers 500 (a handler bug, never silence).
class HttpExchange {
 public:
  virtual ~HttpExchange() = default;
  virtual void respond(HttpResponse response) = 0;
  // Builds the response on the connection's I/O thread, then sends it: for callers
  // whose own thread should not do that work (an engine executor). Counts as the response:
  // ignored when the exchange already responded; otherwise `make` runs exactly once (also when
  // the client is gone, the response is then dropped) unless the server is destroyed first. An
  // exception from `make` becomes a 500.
  virtual void respond_with(std::function<HttpResponse()> make) = 0;
  // `callback` runs at most once, on an I/O thread, if the client disconnects before respond().
  virtual void on_disconnect(std::function<void()> callback) = 0;
};

// Must not block: hand long work to another thread and respond() from there.
using HttpHandler = std::function<void(HttpRequest&& request, std::shared_ptr<HttpExchange>)>;
// Builds the response for a protocol-level error (413, 431, 400, 503 for too many connections)
// on `target` ("" if unknown).
using HttpErrorFactory =
    std::function<HttpResponse(int status, std::string_view target, std::string message)>;

struct HttpServerOptions {
  std::string host = "0.0.0.0";
  std::uint16_t port = 8080;  // 0 = any free port (see HttpServer::port())
  int io_threads = 2;
  std::size_t body_limit = 8u << 20;
  std::size_t header_limit = 16u << 10;
  std::chrono::milliseconds read_timeout{30000};   // one whole request, headers and body
  std::chrono::milliseconds idle_timeout{60000};   // keep-alive wait for the next request
  std::chrono::milliseconds write_timeout{60000};
  std::size_t max_connections = 4096;  // open connections; beyond it new ones get 503 and close
  std::chrono::microseconds idle_spin{0};  // see "Idle spin" above; 0 = sleep at once
  std::string server_name = "embd";
  // Catch SIGINT/SIGTERM for wait_for_signal() (the CLI); tests leave signals alone.
  bool handle_signals = false;
};

class HttpServer {
 public:
  static Result<std::unique_ptr<HttpServer>> start(HttpServerOptions options, HttpHandler handler,
                                                   HttpErrorFactory make_error);
  ~HttpServer();  // begin_shutdown(), waits up to 5 s for in-flight requests, joins threads
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  std::uint16_t port() const;
  // Blocks until SIGINT or SIGTERM arrives (with handle_signals) or begin_shutdown() is called;
  // returns the signal number, 0 for begin_shutdown().
  int wait_for_signal();
  void begin_shutdown();
  // After begin_shutdown(): waits until every connection has closed; false on timeout.
  bool wait_drained(std::chrono::milliseconds timeout);
  std::size_t open_connections() const;

  class Impl;

 private:
  explicit HttpServer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;  // shared with pending exchanges (see http_server.cpp)
};

}  // namespace embd::server
