// Server lifecycle, routing, authentication and the GET routes (/health, /info, /metrics).
#include "server.h"

#include <algorithm>
#include <cstdio>
#include <thread>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include "embd/version.hpp"
#include "json_codec.h"
#include "service.h"

namespace embd::server {

using Clock = std::chrono::steady_clock;
using Kind = ApiError::Kind;

namespace {

// Constant-time comparison, so response timing does not reveal how much of a key matched.
bool same_secret(std::string_view a, std::string_view b) {
  unsigned diff = a.size() != b.size();
  for (std::size_t i = 0; i < a.size(); ++i) diff |= unsigned(a[i]) ^ unsigned(b[i % b.size()]);
  return diff == 0;
}

std::shared_ptr<const EngineSlot> make_slot(std::shared_ptr<Engine> engine,
                                            const ServerOptions& options) {
  auto slot = std::make_shared<EngineSlot>();
  const ModelInfo& info = engine->info();
  slot->max_length = info.max_length;
  slot->hidden_size = info.hidden_size;
  slot->model_name = options.served_model_name.empty() ? info.model_id : options.served_model_name;
  for (const auto& device : info.devices) {
    slot->compute_type += (slot->compute_type.empty() ? "" : ",") + device;
  }
  if (slot->compute_type.empty()) slot->compute_type = "cpu";
  // The template's tokens are what an empty text turns into ([CLS] [SEP] for BERT).
  if (auto empty = engine->tokenize({std::string()}); empty.ok() && !empty->empty()) {
    slot->specials = (*empty)[0].size();
    slot->special_ids.insert((*empty)[0].begin(), (*empty)[0].end());
  }
  slot->engine = std::move(engine);
  return slot;
}

}  // namespace

// io_threads / workers of 0 become the machine-sized defaults (see ServerOptions).
static ServerOptions with_thread_defaults(ServerOptions o) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (o.io_threads <= 0) o.io_threads = std::max(2, cores / 2);
  if (o.workers <= 0) o.workers = std::max(2, cores / 2);
  return o;
}

class Server::Impl {
 public:
  explicit Impl(const ServerOptions& options)
      : ctx_(with_thread_defaults(options)), pool_(static_cast<std::size_t>(ctx_.options.workers)) {
    ctx_.post_work = [this](std::function<void()> task) {
      boost::asio::post(pool_, std::move(task));
    };
  }

  Status start() {
    HttpServerOptions http;
    http.host = ctx_.options.host;
    http.port = ctx_.options.port;
    http.io_threads = ctx_.options.io_threads;
    http.idle_spin = std::chrono::microseconds(std::max(0, ctx_.options.io_spin_us));
    http.body_limit = ctx_.options.payload_limit;
    http.max_connections = ctx_.options.max_connections;
    http.handle_signals = ctx_.options.handle_signals;
    auto server = HttpServer::start(
        http, [this](HttpRequest&& r, std::shared_ptr<HttpExchange> e) { route(std::move(r), e); },
        [](int status, std::string_view target, std::string message) {
          const Kind kind = status == 413   ? Kind::kPayloadTooLarge
                            : status == 503 ? Kind::kUnavailable
                                            : Kind::kMalformed;
          ApiError error = make_error(kind, std::move(message));
          HttpResponse response = error_response(error, flavor_for(target.substr(0, target.find('?'))));
          response.status = status;
          return response;
        });
    if (!server.ok()) return server.status();
    http_ = std::move(server).value();
    return Status();
  }

  void shutdown();
  void route(HttpRequest&& request, std::shared_ptr<HttpExchange> exchange);

  ServiceContext ctx_;
  boost::asio::thread_pool pool_;
  std::unique_ptr<HttpServer> http_;
  std::once_flag shutdown_once_;

 private:
  bool authorized(const HttpRequest& request) const;
  HttpResponse health() const;
  HttpResponse info() const;
  HttpResponse metrics() const;
};

bool Server::Impl::authorized(const HttpRequest& request) const {
  const std::string& key = ctx_.options.api_key;
  if (key.empty()) return true;
  std::string_view auth = request.header("authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (auth.size() < kBearer.size()) return false;
  if (!same_secret(auth.substr(0, kBearer.size()), kBearer) &&
      !same_secret(auth.substr(0, kBearer.size()), "bearer ")) {
    return false;
  }
  return same_secret(auth.substr(kBearer.size()), key);
}

HttpResponse Server::Impl::health() const {
  if (ctx_.slot() && !ctx_.shutting_down.load()) {
    HttpResponse response;
    response.content_type = "";
    return response;
  }
  return error_response(make_error(Kind::kUnavailable, "unhealthy"), ApiFlavor::kTei);
}

HttpResponse Server::Impl::info() const {
  auto slot = ctx_.slot();
  if (!slot) {
    return error_response(make_error(Kind::kUnavailable, "model is not loaded yet"),
                          ApiFlavor::kTei);
  }
  const ModelInfo& m = slot->engine->info();
  const auto& o = ctx_.options;
  nlohmann::json j = {
      {"model_id", m.model_id},
      {"served_model_name", slot->model_name},
      {"model_sha", nullptr},
      {"model_dtype", m.compute_dtype},
      {"model_type", {{"embedding", {{"pooling", m.pooling}}}}},
      {"max_concurrent_requests", o.max_concurrent_requests},
      {"max_input_length", m.max_length},
      {"max_batch_tokens", o.max_batch_tokens},
      {"max_batch_requests", o.max_batch_requests ? nlohmann::json(o.max_batch_requests)
                                                  : nlohmann::json(nullptr)},
      {"max_client_batch_size", o.max_client_batch_size},
      {"max_connections", o.max_connections},
      {"max_request_tokens", o.max_request_tokens},
      {"auto_truncate", o.auto_truncate},
      {"tokenization_workers", o.tokenization_workers},
      {"version", kVersion},
      {"architecture", m.architecture},
      {"variant", m.variant},
      {"stored_dtype", m.stored_dtype},
      {"hidden_size", m.hidden_size},
      {"num_layers", m.num_layers},
      {"parameters", m.parameters},
      {"normalize_default", m.normalize_default},
      {"devices", m.devices},
      {"query_lanes", m.query_lanes},
      {"concurrent_batches", m.concurrent_batches},
      {"tokenizer", m.tokenizer_summary},
  };
  return json_response(200, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

HttpResponse Server::Impl::metrics() const {
  auto slot = ctx_.slot();
  std::optional<EngineStats> stats;
  if (slot) stats = slot->engine->stats();
  HttpResponse response;
  response.content_type = "text/plain; version=0.0.4";
  response.body = ctx_.metrics.render(stats ? &*stats : nullptr);
  return response;
}

void Server::Impl::route(HttpRequest&& request, std::shared_ptr<HttpExchange> exchange) {
  const std::string path(request.path());
  const ApiFlavor flavor = flavor_for(path);
  const bool get = request.method == "GET" || request.method == "HEAD";
  const bool post = request.method == "POST";
  if (get && (path == "/health" || path == "/" || path == "/ping")) {
    return exchange->respond(health());
  }
  using Handler = void (*)(ServiceContext&, HttpRequest, std::shared_ptr<HttpExchange>);
  Handler handler = nullptr;
  bool known = true;
  if (path == "/embed") {
    handler = post ? handle_tei_embed : nullptr;
  } else if (path == "/v1/embeddings" || path == "/embeddings") {
    handler = post ? handle_openai_embed : nullptr;
  } else if (path == "/tokenize") {
    handler = post ? handle_tokenize : nullptr;
  } else if (path != "/info" && path != "/metrics") {
    known = false;
  }
  if (!authorized(request)) {
    HttpResponse response = error_response(
        make_error(Kind::kUnauthorized, "missing or invalid `Authorization: Bearer` API key"),
        flavor);
    response.headers.push_back({"www-authenticate", "Bearer"});
    return exchange->respond(std::move(response));
  }
  if (get && path == "/info") return exchange->respond(info());
  if (get && path == "/metrics") return exchange->respond(metrics());
  if (!handler) {
    ApiError error = known ? make_error(Kind::kMethodNotAllowed,
                                        "method " + request.method + " is not allowed on " + path)
                           : make_error(Kind::kNotFound, "no route " + path);
    return exchange->respond(error_response(error, flavor));
  }
  ctx_.metrics.record_request();
  // Count first, then look at the flag: shutdown() sets the flag, then waits for the count, so
  // a request either sees the flag or is waited for.
  ctx_.in_flight.fetch_add(1);
  if (ctx_.shutting_down.load()) {
    ctx_.in_flight.fetch_sub(1);
    ctx_.metrics.record_failure("unavailable");
    return exchange->respond(
        error_response(make_error(Kind::kUnavailable, "server is shutting down"), flavor));
  }
  ctx_.metrics.add_in_flight(1);
  if (request.body.size() <= kInlineBodyBytes) return handler(ctx_, std::move(request), exchange);
  ctx_.post_work([this, handler, r = std::move(request), exchange]() mutable {
    handler(ctx_, std::move(r), std::move(exchange));
  });
}

void Server::Impl::shutdown() {
  std::call_once(shutdown_once_, [this] {
    ctx_.shutting_down.store(true);
    if (http_) http_->begin_shutdown();
    // Requests already read are answered: the engine resolves every request it accepted, and
    // each completion callback uses ctx_ until it decrements in_flight, so this waits for all
    // of them (past shutdown_grace only as long as batches already queued take).
    const auto deadline = Clock::now() + ctx_.options.shutdown_grace;
    while (ctx_.in_flight.load() > 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (http_) http_->wait_drained(std::chrono::seconds(2));
    while (ctx_.in_flight.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    pool_.join();
    http_.reset();
  });
}

Result<std::unique_ptr<Server>> Server::start(const ServerOptions& options) {
  auto impl = std::make_unique<Impl>(options);
  Status status = impl->start();
  if (!status.ok()) return status;
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() { shutdown(); }

void Server::set_engine(std::shared_ptr<Engine> engine) {
  impl_->ctx_.set_slot(make_slot(std::move(engine), impl_->ctx_.options));
}

std::uint16_t Server::port() const { return impl_->http_ ? impl_->http_->port() : 0; }
int Server::wait_for_signal() { return impl_->http_ ? impl_->http_->wait_for_signal() : 0; }
void Server::shutdown() { impl_->shutdown(); }

}  // namespace embd::server
