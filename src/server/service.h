// Internals shared by the server's route handlers: configuration, the engine slot, admission
// permits, request policies (priority, token bounds) and the response helpers.
//
// ServiceContext is owned by Server::Impl and outlives every request it serves. Its members
// are thread-safe as documented; policy functions are pure.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "api_error.h"
#include "embd/engine.hpp"
#include "http_server.h"
#include "metrics.h"
#include "server.h"

namespace embd::server {

// Per-input admission permits (TEI's --max-concurrent-requests semantics). Lock-free.
class Admission {
 public:
  explicit Admission(std::size_t capacity) : capacity_(capacity) {}
  // Takes n permits or none; false when fewer than n are free.
  bool try_acquire(std::size_t n);
  void release(std::size_t n) { used_.fetch_sub(n, std::memory_order_acq_rel); }
  std::size_t used() const { return used_.load(std::memory_order_acquire); }
  std::size_t capacity() const { return capacity_; }

 private:
  const std::size_t capacity_;
  std::atomic<std::size_t> used_{0};
};

// What the model needs to know once loaded (computed in set_engine, then immutable).
struct EngineSlot {
  std::shared_ptr<Engine> engine;
  std::size_t max_length = 0;
  std::size_t hidden_size = 0;
  std::size_t specials = 2;                    // tokens the template adds around one text
  std::unordered_set<std::int32_t> special_ids;  // ids of those template tokens
  std::string model_name;                      // served name
  std::string compute_type;                    // x-compute-type: the devices, comma-separated
};

struct ServiceContext {
  ServerOptions options;
  ServerMetrics metrics;
  Admission admission;
  std::function<void(std::function<void()>)> post_work;  // runs a task on the worker pool
  std::atomic<bool> shutting_down{false};
  // Embedding-route requests not yet answered. Decrementing it is the last thing a request does
  // with this context, so shutdown() may free the context once it reads zero.
  std::atomic<std::int64_t> in_flight{0};

  explicit ServiceContext(const ServerOptions& o)
      : options(o), admission(o.max_concurrent_requests) {}

  // The loaded engine, or null while loading. Thread-safe.
  std::shared_ptr<const EngineSlot> slot() const {
    std::lock_guard lock(mu);
    return slot_;
  }
  void set_slot(std::shared_ptr<const EngineSlot> s) {
    std::lock_guard lock(mu);
    slot_ = std::move(s);
  }

 private:
  mutable std::mutex mu;
  std::shared_ptr<const EngineSlot> slot_;
};

// The default class when the client names none: a single short text is a query a user waits
// for, many inputs or much text is bulk indexing, anything between is interactive.
Priority default_priority(std::size_t inputs, std::size_t total_bytes);

// An upper bound of the tokens a text can produce (WordPiece emits at most one token per byte,
// plus the template's specials), capped at max_length when truncating.
std::size_t token_upper_bound(std::size_t bytes, std::size_t specials, std::size_t max_length,
                              bool truncate);

// UTF-8 code points in `text` (x-compute-characters); bytes that are not lead bytes are skipped.
std::size_t count_characters(std::string_view text);

// Milliseconds as TEI's timing headers print them.
std::string format_ms(std::chrono::steady_clock::duration d);

HttpResponse json_response(int status, std::string body);
HttpResponse error_response(const ApiError& error, ApiFlavor flavor);
// The route family of a path: OpenAI for /v1/... and /embeddings, TEI otherwise.
ApiFlavor flavor_for(std::string_view path);

// Request bodies up to this size are handled on the I/O thread that read them (parsing and
// tokenising them takes microseconds); larger ones go to the worker pool.
inline constexpr std::size_t kInlineBodyBytes = 4096;

// POST route handlers. They run on an I/O thread or the worker pool (see kInlineBodyBytes),
// never block, and always respond exactly once.
void handle_tei_embed(ServiceContext& ctx, HttpRequest request,
                      std::shared_ptr<HttpExchange> exchange);
void handle_openai_embed(ServiceContext& ctx, HttpRequest request,
                         std::shared_ptr<HttpExchange> exchange);
void handle_tokenize(ServiceContext& ctx, HttpRequest request,
                     std::shared_ptr<HttpExchange> exchange);

}  // namespace embd::server
