#include "http_server.h"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace embd::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string_view HttpRequest::header(std::string_view lower_name) const {
  for (const auto& h : headers) {
    if (h.name == lower_name) return h.value;
  }
  return {};
}

std::string_view HttpRequest::path() const {
  std::string_view t = target;
  return t.substr(0, t.find('?'));
}

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
  return out;
}

const char* reason_for(int status) {
  switch (status) {
    case 499: return "Client Closed Request";
    default: return nullptr;
  }
}

using Clock = std::chrono::steady_clock;
// Every connection lives on one io_context run by one thread: its handlers never run
// concurrently, so sessions need no strand and use the context's executor type directly (no
// type-erased executor on each operation).
using Socket = net::basic_stream_socket<tcp, net::io_context::executor_type>;

// The status line and header block of a response ("...\r\n\r\n"). Written here rather than
// through Beast's serializer: a response is a fixed list of fields, and the serializer's
// per-field buffer machinery was a visible share of the server's CPU at high request rates.
std::string serialize_head(const HttpResponse& response, unsigned version, bool keep_alive,
                           const std::string& server_name) {
  std::string head;
  head.reserve(160 + 48 * response.headers.size());
  head += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  head += std::to_string(response.status);
  head += ' ';
  if (const char* reason = reason_for(response.status)) {
    head += reason;
  } else {
    const auto phrase = http::obsolete_reason(http::int_to_status(static_cast<unsigned>(response.status)));
    head.append(phrase.data(), phrase.size());
  }
  auto field = [&head](std::string_view name, std::string_view value) {
    head.append(name).append(": ").append(value).append("\r\n");
  };
  head += "\r\n";
  field("Server", server_name);
  if (!response.content_type.empty()) field("Content-Type", response.content_type);
  for (const auto& h : response.headers) field(h.name, h.value);
  std::size_t length = response.body.size();
  for (const auto& piece : response.body_more) length += piece.size();
  field("Content-Length", std::to_string(length));
  // HTTP/1.1 connections persist unless closed; HTTP/1.0 ones close unless kept alive.
  if (version >= 11 && !keep_alive) field("Connection", "close");
  if (version < 11 && keep_alive) field("Connection", "keep-alive");
  head += "\r\n";
  return head;
}

}  // namespace

class Session;

// Shared by the listener and every session. Exchanges keep it alive (shared_ptr), so a
// response posted after the server object is gone goes nowhere instead of into freed memory.
class HttpServer::Impl : public std::enable_shared_from_this<HttpServer::Impl> {
 public:
  Impl(HttpServerOptions options, HttpHandler handler, HttpErrorFactory make_error)
      : options_(std::move(options)), handler_(std::move(handler)),
        make_error_(std::move(make_error)), contexts_(make_contexts(options_.io_threads)),
        acceptor_(net::make_strand(*contexts_.front())), signals_(*contexts_.front()),
        accept_retry_(acceptor_.get_executor()) {
    for (auto& c : contexts_) {
      work_.push_back(net::make_work_guard(*c));
      sweeps_.push_back(std::make_unique<Sweep>(*c));
    }
  }

  Status listen();
  void run_threads();
  void do_accept();
  // Over max_connections: a 503 in one non-blocking write, then close (no session, no waiting).
  void refuse(Socket socket);
  void begin_shutdown();
  bool wait_drained(std::chrono::milliseconds timeout);
  int wait_for_signal();
  void stop_and_join();
  // The loop of the I/O thread that owns `context`: handlers, then the idle spin, then sleep.
  void run_context(net::io_context& context);

  void register_session(std::uint64_t id, std::weak_ptr<Session> session);
  // Runs on context `home`'s thread: the session's deadline is checked there from now on.
  void watch_deadline(std::size_t home, std::weak_ptr<Session> session);
  void sweep(std::size_t home);
  std::size_t open_connections() const;
  void unregister_session(std::uint64_t id);
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }

  HttpServerOptions options_;
  HttpHandler handler_;
  HttpErrorFactory make_error_;
  std::atomic<std::uint16_t> port_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> next_session_id_{1};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::uint64_t, std::weak_ptr<Session>> sessions_;  // guarded by mu_
  int signal_ = -1;                                                     // guarded by mu_

  // One io_context per I/O thread (a connection lives on one of them, chosen round robin): no
  // shared queue between the threads and no hand-off of a connection's work to another thread.
  // Declared after the registry: destroying a context destroys pending handlers, which destroy
  // sessions, which unregister themselves.
  static std::vector<std::unique_ptr<net::io_context>> make_contexts(int n) {
    std::vector<std::unique_ptr<net::io_context>> contexts;
    for (int i = 0; i < std::max(1, n); ++i) contexts.push_back(std::make_unique<net::io_context>(1));
    return contexts;
  }
  std::vector<std::unique_ptr<net::io_context>> contexts_;
  // Keep every context running while idle; stop_and_join() stops them.
  std::vector<net::executor_work_guard<net::io_context::executor_type>> work_;
  // Timeouts and disconnect watches: one timer per context walks its sessions every
  // sweep_period(), closes those past their deadline and starts a disconnect watch on requests
  // still being processed. Setting a deadline is then a store, instead of arming and cancelling
  // a timer around every read and write, and a request answered within a period (most are) never
  // arms a watch. Each Sweep is used on its context's thread only; sessions that have ended are
  // dropped from it as it walks.
  struct Sweep {
    explicit Sweep(net::io_context& context) : timer(context) {}
    net::steady_timer timer;
    std::vector<std::weak_ptr<Session>> sessions;
  };
  std::vector<std::unique_ptr<Sweep>> sweeps_;
  Clock::duration sweep_period() const;
  std::size_t next_context_ = 0;  // used on the acceptor's strand only
  tcp::acceptor acceptor_;
  net::signal_set signals_;
  net::steady_timer accept_retry_;
  std::vector<std::thread> threads_;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Socket socket, HttpServer::Impl& server, std::size_t home)
      : socket_(std::move(socket)), server_(server), home_(home),
        id_(server.next_session_id_.fetch_add(1)) {}
  ~Session() { server_.unregister_session(id_); }

  void start() {
    server_.register_session(id_, weak_from_this());
    net::dispatch(socket_.get_executor(), [self = shared_from_this()] {
      self->server_.watch_deadline(self->home_, self->weak_from_this());
      self->do_read();
    });
  }
  // On the session's thread, from its context's sweep: closes it when past its deadline, and
  // starts watching for a disconnect while a request is being processed.
  void check(Clock::time_point now) {
    if (state_ != State::kClosed && now >= deadline_) return close();
    if (state_ == State::kProcessing && !watching_ && !client_gone_) watch_disconnect();
  }
  // Runs on the session's thread (posted by begin_shutdown): idle or half-read connections close now.
  void on_shutdown() {
    if (state_ == State::kReading || state_ == State::kLingering) close();
  }
  void send(HttpResponse response);
  void set_disconnect_callback(std::function<void()> callback) {
    if (state_ != State::kProcessing) return;
    if (client_gone_) {
      callback();
      return;
    }
    on_disconnect_ = std::move(callback);
  }
  net::io_context::executor_type executor() { return socket_.get_executor(); }

 private:
  enum class State { kReading, kProcessing, kWriting, kLingering, kClosed };

  void do_read();
  void on_header(beast::error_code ec);
  void read_body();
  void on_read(beast::error_code ec);
  void read_failed(beast::error_code ec);
  void dispatch_request();
  void watch_disconnect();
  void on_readable(beast::error_code ec);
  void write(HttpResponse response, unsigned version, bool close_after);
  void linger();
  void close();
  // The sweep closes the connection once `timeout` has passed without this being called again
  // (or expire_never()): the deadline of the operation about to start.
  void expire_after(std::chrono::milliseconds timeout) { deadline_ = Clock::now() + timeout; }
  void expire_never() { deadline_ = Clock::time_point::max(); }

  Socket socket_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpServer::Impl& server_;
  const std::size_t home_;  // index of the io_context (and thread) the connection lives on
  const std::uint64_t id_;
  State state_ = State::kReading;
  Clock::time_point deadline_ = Clock::time_point::max();
  std::string out_head_, out_body_;  // the response being written
  std::vector<std::string> out_more_;
  bool first_request_ = true;
  bool keep_alive_ = false;
  unsigned version_ = 11;
  bool watching_ = false;
  std::uint64_t watch_generation_ = 0;  // a watch completion from an earlier request is stale
  bool client_gone_ = false;
  std::function<void()> on_disconnect_;
  bool error_reply_ = false;  // answering a request we did not read to the end
  std::array<char, 16384> discard_{};
  std::size_t lingered_ = 0;
};

// The reply channel handed to the application. Holds the session (and the server core) alive
// until it has responded (the I/O threads run until the server stops).
class Exchange final : public HttpExchange {
 public:
  Exchange(std::shared_ptr<HttpServer::Impl> core, std::shared_ptr<Session> session)
      : core_(std::move(core)), session_(std::move(session)) {}
  ~Exchange() override {
    if (!done_.load()) {
      HttpResponse response = core_->make_error_(500, "", "internal error: request dropped");
      post(std::move(response));
    }
  }
  void respond(HttpResponse response) override {
    if (done_.exchange(true)) return;
    post(std::move(response));
  }
  void respond_with(std::function<HttpResponse()> make) override {
    if (done_.exchange(true)) return;
    net::post(session_->executor(), [s = session_, core = core_, make = std::move(make)] {
      HttpResponse response;
      try {
        response = make();
      } catch (const std::exception& e) {
        response = core->make_error_(500, "", std::string("internal error: ") + e.what());
      } catch (...) {
        response = core->make_error_(500, "", "internal error");
      }
      s->send(std::move(response));
    });
  }
  void on_disconnect(std::function<void()> callback) override {
    net::post(session_->executor(), [s = session_, cb = std::move(callback)]() mutable {
      s->set_disconnect_callback(std::move(cb));
    });
  }

 private:
  void post(HttpResponse response) {
    net::post(session_->executor(), [s = session_, r = std::move(response)]() mutable {
      s->send(std::move(r));
    });
  }
  std::shared_ptr<HttpServer::Impl> core_;  // destroyed last
  std::shared_ptr<Session> session_;
  std::atomic<bool> done_{false};
};

void Session::do_read() {
  if (server_.stopping()) return close();
  state_ = State::kReading;
  parser_.emplace();
  parser_->body_limit(server_.options_.body_limit);
  parser_->header_limit(static_cast<std::uint32_t>(server_.options_.header_limit));
  expire_after(first_request_ ? server_.options_.read_timeout : server_.options_.idle_timeout);
  http::async_read_header(socket_, buffer_, *parser_,
                          [self = shared_from_this()](beast::error_code ec, std::size_t) {
                            self->on_header(ec);
                          });
}

void Session::on_header(beast::error_code ec) {
  if (ec) return read_failed(ec);
  // curl and others wait for "100 Continue" before sending a body; say it so they need not.
  auto& header = parser_->get();
  auto expect = header[http::field::expect];
  if (beast::iequals(expect, "100-continue") && !parser_->is_done()) {
    static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    net::async_write(socket_, net::buffer(kContinue),
                     [self = shared_from_this()](beast::error_code ec2, std::size_t) {
                       if (ec2) return self->close();
                       self->read_body();
                     });
    return;
  }
  read_body();
}

void Session::read_body() {
  http::async_read(socket_, buffer_, *parser_,
                   [self = shared_from_this()](beast::error_code ec, std::size_t) {
                     self->on_read(ec);
                   });
}

void Session::on_read(beast::error_code ec) {
  if (ec) return read_failed(ec);
  dispatch_request();
}

void Session::read_failed(beast::error_code ec) {
  int status = 400;
  std::string message;
  const auto& http_category = http::make_error_code(http::error::bad_target).category();
  if (ec == http::error::body_limit) {
    status = 413;
    message = "Failed to buffer the request body: length limit exceeded (limit " +
              std::to_string(server_.options_.body_limit) + " bytes)";
  } else if (ec == http::error::header_limit) {
    status = 431;
    message = "request headers are larger than " +
              std::to_string(server_.options_.header_limit) + " bytes";
  } else if (ec.category() == http_category && ec != http::error::end_of_stream &&
             ec != http::error::partial_message) {
    message = "malformed HTTP request: " + ec.message();
  } else {
    // A clean close, an idle or slow client, shutdown, a client gone mid-request or a socket
    // error: nobody to answer.
    return close();
  }
  std::string target;
  if (parser_) {  // the start line may have been parsed even when a header field failed
    const auto t = parser_->get().target();
    target.assign(t.data(), t.size());
  }
  state_ = State::kWriting;
  error_reply_ = true;
  write(server_.make_error_(status, target, std::move(message)), 11, /*close_after=*/true);
}

void Session::dispatch_request() {
  auto message = parser_->release();
  HttpRequest request;
  const auto method = message.method_string();
  request.method = std::string(method.data(), method.size());
  const auto target = message.target();
  request.target = std::string(target.data(), target.size());
  for (const auto& field : message) {
    const auto name = field.name_string();
    const auto value = field.value();
    request.headers.push_back({lower({name.data(), name.size()}), std::string(value.data(), value.size())});
  }
  request.body = std::move(message.body());
  request.received = std::chrono::steady_clock::now();
  version_ = message.version();
  keep_alive_ = message.keep_alive();
  first_request_ = false;
  state_ = State::kProcessing;
  client_gone_ = false;
  expire_never();
  auto exchange = std::make_shared<Exchange>(server_.shared_from_this(), shared_from_this());
  try {
    server_.handler_(std::move(request), exchange);
  } catch (const std::exception& e) {
    exchange->respond(server_.make_error_(500, "", std::string("internal error: ") + e.what()));
  } catch (...) {
    exchange->respond(server_.make_error_(500, "", "internal error"));
  }
}

void Session::watch_disconnect() {
  watching_ = true;
  const std::uint64_t generation = ++watch_generation_;
  socket_.async_wait(tcp::socket::wait_read,
                              [self = shared_from_this(), generation](beast::error_code ec) {
                                if (generation != self->watch_generation_) return;
                                self->on_readable(ec);
                              });
}

void Session::on_readable(beast::error_code ec) {
  watching_ = false;
  if (ec || state_ != State::kProcessing) return;
  // Peek without blocking: bytes mean a pipelined request (the client is there; they stay for
  // the next read), 0 means EOF, EAGAIN means a stale readiness edge (epoll may report data
  // that the last read already consumed): watch again. Anything else is a reset.
  char byte;
  const ssize_t n = ::recv(socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return;
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    return watch_disconnect();
  }
  client_gone_ = true;
  if (on_disconnect_) {
    auto callback = std::move(on_disconnect_);
    on_disconnect_ = nullptr;
    callback();
  }
}

void Session::send(HttpResponse response) {
  if (state_ != State::kProcessing) return;
  on_disconnect_ = nullptr;
  if (watching_) {
    beast::error_code ignored;
    socket_.cancel(ignored);  // ends the disconnect watch
    watching_ = false;
  }
  ++watch_generation_;  // a completion already queued for this request's watch is now stale
  state_ = State::kWriting;
  const bool close_after = !keep_alive_ || client_gone_ || server_.stopping();
  write(std::move(response), version_, close_after);
}

void Session::write(HttpResponse response, unsigned version, bool close_after) {
  out_head_ = serialize_head(response, version, !close_after, server_.options_.server_name);
  out_body_ = std::move(response.body);
  out_more_ = std::move(response.body_more);
  expire_after(server_.options_.write_timeout);
  auto done = [self = shared_from_this(), close_after](beast::error_code ec, std::size_t) {
    self->out_body_ = std::string();  // responses can be large; idle sessions many
    self->out_more_ = {};
    if (ec) return self->close();
    if (!close_after) return self->do_read();
    // Unread bytes at close() make the kernel send RST: drain them first.
    beast::error_code err;
    const bool unread = self->socket_.available(err) > 0 || err || self->error_reply_;
    if (unread) return self->linger();
    self->close();
  };
  if (out_more_.empty()) {
    const std::array<net::const_buffer, 2> buffers{net::buffer(out_head_), net::buffer(out_body_)};
    net::async_write(socket_, buffers, std::move(done));
    return;
  }
  std::vector<net::const_buffer> buffers{net::buffer(out_head_), net::buffer(out_body_)};
  for (const auto& piece : out_more_) buffers.push_back(net::buffer(piece));
  net::async_write(socket_, buffers, std::move(done));
}

// Half-closes and reads what the client still sends for a while before closing: closing a
// socket with unread bytes makes the kernel send RST, which can destroy the error response
// (e.g. the 413 for a body we refused to read) before the client reads it.
void Session::linger() {
  state_ = State::kLingering;
  beast::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
  if (lingered_ == 0) expire_after(std::chrono::seconds(5));
  socket_.async_read_some(net::buffer(discard_),
                          [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                            self->lingered_ += n + 1;
                            if (ec || self->lingered_ > (64u << 20)) return self->close();
                            self->linger();
                          });
}

void Session::close() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  beast::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

Status HttpServer::Impl::listen() {
  beast::error_code ec;
  // A name (e.g. HOSTNAME in a container) resolves to its first address.
  tcp::resolver resolver(*contexts_.front());
  auto results = resolver.resolve(options_.host, std::to_string(options_.port),
                                  tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return Status(ErrorCode::kInvalidArgument,
                  "--host \"" + options_.host + "\" is not an address this machine has: " +
                      (ec ? ec.message() : std::string("no address")));
  }
  tcp::endpoint endpoint = results.begin()->endpoint();
  const std::string where = options_.host + ":" + std::to_string(options_.port);
  if (acceptor_.open(endpoint.protocol(), ec); ec) {
    return Status(ErrorCode::kIoError, "cannot open a socket for " + where + ": " + ec.message());
  }
  acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (acceptor_.bind(endpoint, ec); ec) {
    return Status(ErrorCode::kIoError, "cannot bind " + where + ": " + ec.message());
  }
  if (acceptor_.listen(net::socket_base::max_listen_connections, ec); ec) {
    return Status(ErrorCode::kIoError, "cannot listen on " + where + ": " + ec.message());
  }
  port_ = acceptor_.local_endpoint(ec).port();
  return Status();
}

void HttpServer::Impl::run_threads() {
  if (options_.handle_signals) {
    signals_.add(SIGINT);
    signals_.add(SIGTERM);
  }
  signals_.async_wait([this](beast::error_code ec, int signo) {
    {
      std::lock_guard lock(mu_);
      if (signal_ < 0) signal_ = ec ? 0 : signo;
    }
    cv_.notify_all();
  });
  net::dispatch(acceptor_.get_executor(), [this] { do_accept(); });
  for (std::size_t home = 0; home < contexts_.size(); ++home) {
    net::post(*contexts_[home], [this, home] { sweep(home); });
  }
  for (auto& c : contexts_) threads_.emplace_back([this, ctx = c.get()] { run_context(*ctx); });
}

void HttpServer::Impl::run_context(net::io_context& context) {
  const auto spin = options_.idle_spin;
  if (spin <= spin.zero()) {
    context.run();
    return;
  }
  while (!context.stopped()) {
    // poll() runs every handler that is ready, reading the sockets without blocking.
    if (context.poll() > 0) continue;
    const auto until = Clock::now() + spin;
    std::size_t ran = 0;
    while (ran == 0 && !context.stopped() && Clock::now() < until) ran = context.poll();
    if (ran == 0) context.run_one();  // sleeps in epoll_wait until something is ready
  }
}

void HttpServer::Impl::do_accept() {
  if (stopping()) return;
  const std::size_t home = next_context_++ % contexts_.size();
  acceptor_.async_accept(contexts_[home]->get_executor(), [this, home](beast::error_code ec, Socket socket) {
    if (stopping() || ec == net::error::operation_aborted) return;
    if (ec) {
      // E.g. EMFILE: back off briefly instead of spinning; existing connections keep working.
      std::fprintf(stderr, "embd serve: accept failed: %s\n", ec.message().c_str());
      accept_retry_.expires_after(std::chrono::milliseconds(100));
      accept_retry_.async_wait([this](beast::error_code) { do_accept(); });
      return;
    }
    if (open_connections() >= options_.max_connections) {
      refuse(std::move(socket));
    } else {
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<Session>(std::move(socket), *this, home)->start();
    }
    do_accept();
  });
}

void HttpServer::Impl::refuse(Socket socket) {
  HttpResponse response =
      make_error_(503, "", "too many open connections (the limit is " +
                               std::to_string(options_.max_connections) + "); retry later");
  response.headers.push_back({"Retry-After", "1"});
  std::string bytes = serialize_head(response, 11, /*keep_alive=*/false, options_.server_name) + response.body;
  for (const auto& piece : response.body_more) bytes += piece;
  // A fresh socket's send buffer takes these few hundred bytes at once; never wait for a client
  // we are turning away.
  beast::error_code ignored;
  socket.non_blocking(true, ignored);
  socket.write_some(net::buffer(bytes), ignored);
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

Clock::duration HttpServer::Impl::sweep_period() const {
  // A quarter of the shortest timeout, so a connection closes at most 25% late, and at most
  // 50 ms, how late a client's disconnect may be noticed (its request's work is then cancelled).
  const auto shortest = std::min({options_.read_timeout, options_.idle_timeout,
                                  options_.write_timeout, std::chrono::milliseconds(5000)});
  return std::clamp<Clock::duration>(shortest / 4, std::chrono::milliseconds(10),
                                     std::chrono::milliseconds(50));
}

void HttpServer::Impl::watch_deadline(std::size_t home, std::weak_ptr<Session> session) {
  sweeps_[home]->sessions.push_back(std::move(session));
}

void HttpServer::Impl::sweep(std::size_t home) {
  Sweep& sweep = *sweeps_[home];
  const auto now = Clock::now();
  auto& sessions = sweep.sessions;
  for (std::size_t i = 0; i < sessions.size();) {
    if (auto session = sessions[i].lock()) {
      session->check(now);
      ++i;
    } else {
      sessions[i] = std::move(sessions.back());
      sessions.pop_back();
    }
  }
  sweep.timer.expires_after(sweep_period());
  sweep.timer.async_wait([this, home](beast::error_code ec) {
    if (!ec) this->sweep(home);
  });
}

std::size_t HttpServer::Impl::open_connections() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

void HttpServer::Impl::register_session(std::uint64_t id, std::weak_ptr<Session> session) {
  std::lock_guard lock(mu_);
  sessions_.emplace(id, std::move(session));
}

void HttpServer::Impl::unregister_session(std::uint64_t id) {
  {
    std::lock_guard lock(mu_);
    sessions_.erase(id);
  }
  cv_.notify_all();
}

void HttpServer::Impl::begin_shutdown() {
  if (stopping_.exchange(true)) return;
  net::post(acceptor_.get_executor(), [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
    accept_retry_.cancel();
    signals_.cancel(ignored);
  });
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard lock(mu_);
    if (signal_ < 0) signal_ = 0;
    for (auto& [id, weak] : sessions_) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
  }
  cv_.notify_all();
  for (auto& s : live) net::post(s->executor(), [s] { s->on_shutdown(); });
}

bool HttpServer::Impl::wait_drained(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return sessions_.empty(); });
}

int HttpServer::Impl::wait_for_signal() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return signal_ >= 0; });
  return signal_;
}

void HttpServer::Impl::stop_and_join() {
  for (auto& c : contexts_) c->stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

Result<std::unique_ptr<HttpServer>> HttpServer::start(HttpServerOptions options,
                                                      HttpHandler handler,
                                                      HttpErrorFactory make_error) {
  auto impl = std::make_shared<Impl>(std::move(options), std::move(handler), std::move(make_error));
  Status status = impl->listen();
  if (!status.ok()) return status;
  impl->run_threads();
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  impl_->begin_shutdown();
  impl_->wait_drained(std::chrono::seconds(5));
  impl_->stop_and_join();
}

std::uint16_t HttpServer::port() const { return impl_->port_.load(); }
int HttpServer::wait_for_signal() { return impl_->wait_for_signal(); }
void HttpServer::begin_shutdown() { impl_->begin_shutdown(); }
bool HttpServer::wait_drained(std::chrono::milliseconds timeout) {
  return impl_->wait_drained(timeout);
}
std::size_t HttpServer::open_connections() const { return impl_->open_connections(); }

}  // namespace embd::server
