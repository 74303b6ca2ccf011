// POST /embed, /v1/embeddings (/embeddings) and /tokenize: validate, admit, submit to the
// engine, and answer from the engine's completion callback.
//
// Where the work runs: parsing, validation and tokenisation on whichever thread runs the handler
// (the I/O thread for small bodies, the worker pool for large ones, see kInlineBodyBytes). The
// completion callback runs on the engine's executor thread and does no encoding there: a small
// result is encoded on the connection's own I/O thread (respond_with: the one hop the response
// needs anyway), a large one on the worker pool (in pieces on several workers when very large).
// So no request waits on a thread of its own and the executor is back at its batches at once.
#include <algorithm>
#include <atomic>
#include <memory>
#include <numeric>

#include "json_codec.h"
#include "service.h"

namespace embd::server {
namespace {

using Kind = ApiError::Kind;
using Clock = std::chrono::steady_clock;

// The request's bookkeeping once its response is decided: metrics, then the in-flight count.
// That is its last use of ctx (shutdown() may free it as soon as in_flight reads zero); the
// response is sent after.
HttpResponse settle(ServiceContext& ctx, HttpResponse response, Clock::time_point received,
                    std::uint64_t inputs, std::uint64_t tokens, bool empty_error = false) {
  if (response.status == 200) {
    ctx.metrics.record_success(std::chrono::duration<double>(Clock::now() - received).count(),
                               inputs, tokens);
  } else {
    ctx.metrics.record_failure(failure_label(response.status, empty_error));
  }
  ctx.metrics.add_in_flight(-1);
  ctx.in_flight.fetch_sub(1, std::memory_order_acq_rel);
  return response;
}

HttpResponse failure(ServiceContext& ctx, const ApiError& error, ApiFlavor flavor,
                     Clock::time_point received) {
  HttpResponse response = error_response(error, flavor);
  if (error.kind == Kind::kOverloaded) response.headers.push_back({"retry-after", "1"});
  return settle(ctx, std::move(response), received, 0, 0, error.kind == Kind::kEmpty);
}

void fail(ServiceContext& ctx, HttpExchange& exchange, const ApiError& error, ApiFlavor flavor,
          Clock::time_point received) {
  exchange.respond(failure(ctx, error, flavor, received));
}

// One embedding request after route-specific parsing.
struct EmbedJob {
  ApiFlavor flavor = ApiFlavor::kTei;
  const char* field = "inputs";  // request field holding the inputs (for error messages)
  EmbedInputs inputs;
  EmbedOptions options;
  std::optional<Priority> priority;  // from the body
  EmbeddingsFormat format;
};

// Exact token counts for the request-token limit when the cheap bound cannot rule it out.
std::optional<ApiError> check_exact_tokens(const EngineSlot& slot, const EmbedJob& job,
                                           std::size_t limit) {
  const auto& o = job.options;
  auto tokens = slot.engine->tokenize(job.inputs.texts, o.truncate ? slot.max_length : 0,
                                      o.truncation_direction);
  if (!tokens.ok()) return from_status(tokens.status(), job.field);
  std::size_t total = 0;
  for (std::size_t i = 0; i < tokens->size(); ++i) {
    const std::size_t n = (*tokens)[i].size();
    if (!o.truncate && slot.max_length && n > slot.max_length) {
      return make_error(Kind::kTooLong,
                        "Input validation error: `" + std::string(job.field) + "[" +
                            std::to_string(i) + "]` must have less than " +
                            std::to_string(slot.max_length) + " tokens. Given: " +
                            std::to_string(n),
                        job.field);
    }
    total += n;
  }
  if (total > limit) {
    return make_error(Kind::kTooLarge,
                      "request has " + std::to_string(total) + " tokens, more than the maximum "
                      "of " + std::to_string(limit) + " tokens per request", job.field);
  }
  return std::nullopt;
}

// Limits that need the model: batch size, dimensions, tokens per request.
std::optional<ApiError> validate(const ServiceContext& ctx, const EngineSlot& slot,
                                 const EmbedJob& job) {
  const std::size_t n = job.inputs.size();
  const auto& o = ctx.options;
  if (n > o.max_client_batch_size) {
    return make_error(Kind::kTooLarge,
                      "batch size " + std::to_string(n) + " > maximum allowed batch size " +
                          std::to_string(o.max_client_batch_size), job.field);
  }
  if (n > ctx.admission.capacity()) {
    return make_error(Kind::kTooLarge,
                      "batch size " + std::to_string(n) + " > --max-concurrent-requests " +
                          std::to_string(ctx.admission.capacity()), job.field);
  }
  if (job.options.dimensions > slot.hidden_size) {
    return make_error(Kind::kValidation,
                      "`dimensions` must be at most " + std::to_string(slot.hidden_size) +
                          " (the model's size), got " + std::to_string(job.options.dimensions),
                      "dimensions");
  }
  if (o.max_request_tokens == 0) return std::nullopt;
  std::size_t bound = 0;
  const bool truncate = job.options.truncate;
  for (const auto& text : job.inputs.texts) {
    bound += token_upper_bound(text.size(), slot.specials, slot.max_length, truncate);
  }
  for (const auto& ids : job.inputs.ids) {
    bound += token_upper_bound(ids.size(), slot.specials, slot.max_length, truncate);
  }
  if (bound <= o.max_request_tokens) return std::nullopt;
  if (job.inputs.is_tokens) {
    std::size_t total = 0;
    for (const auto& ids : job.inputs.ids) total += ids.size();
    if (total <= o.max_request_tokens) return std::nullopt;
    return make_error(Kind::kTooLarge,
                      "request has " + std::to_string(total) + " tokens, more than the maximum "
                      "of " + std::to_string(o.max_request_tokens) + " tokens per request",
                      job.field);
  }
  return check_exact_tokens(slot, job, o.max_request_tokens);
}

ApiResult<Priority> resolve_priority(const HttpRequest& request, const EmbedJob& job) {
  if (auto header = request.header("x-priority"); !header.empty()) {
    if (auto p = parse_priority(header)) return *p;
    return make_error(Kind::kValidation,
                      "header `x-priority` must be query, interactive or batch, got \"" +
                          std::string(header) + "\"", "x-priority");
  }
  if (job.priority) return *job.priority;
  std::size_t bytes = 0;
  for (const auto& t : job.inputs.texts) bytes += t.size();
  for (const auto& ids : job.inputs.ids) bytes += ids.size() * 4;
  return default_priority(job.inputs.size(), bytes);
}

// Results with more floats than this are encoded on the worker pool, not on the connection's
// I/O thread, which would stall its other connections meanwhile (printing takes about 27 ns a
// float on the H100 host, encode_bench: 1024 floats about 30 us, more under load).
constexpr std::size_t kInlineEncodeFloats = 1024;

// What the completion callback needs. It holds no reference to the engine: the callback is
// destroyed on an executor thread, which must never drop the engine's last reference.
struct Completion {
  ServiceContext* ctx;
  std::shared_ptr<HttpExchange> exchange;
  std::string compute_type;
  Clock::time_point received;
  Clock::time_point submitted;
  std::size_t inputs = 0;
  std::size_t characters = 0;
  ApiFlavor flavor;
  std::string field;
  EmbeddingsFormat format;
};

// The response to a resolved request, encoded (unless `pieces` already hold the encoding, to be
// sent one after another), with its bookkeeping done.
HttpResponse answer(const Completion& c, Clock::duration engine_time, Result<Embeddings> result,
                    std::vector<std::string> pieces = {}) {
  c.ctx->admission.release(c.inputs);
  if (!result.ok()) return failure(*c.ctx, from_status(result.status(), c.field), c.flavor, c.received);
  const Embeddings& e = *result;
  if (e.rows != c.inputs || e.data.size() != e.rows * e.dim) {
    return failure(*c.ctx,
                   make_error(Kind::kBackend, "engine returned " + std::to_string(e.rows) +
                                                  " rows for " + std::to_string(c.inputs) +
                                                  " inputs"),
                   c.flavor, c.received);
  }
  std::uint64_t tokens = std::accumulate(e.token_counts.begin(), e.token_counts.end(),
                                         std::uint64_t{0});
  HttpResponse response = json_response(200, pieces.empty() ? encode_embeddings(c.format, e) : std::string());
  response.body_more = std::move(pieces);
  response.headers.push_back({"x-compute-type", c.compute_type});
  response.headers.push_back({"x-compute-time", format_ms(engine_time)});
  response.headers.push_back({"x-compute-characters", std::to_string(c.characters)});
  response.headers.push_back({"x-compute-tokens", std::to_string(tokens)});
  response.headers.push_back({"x-total-time", format_ms(Clock::now() - c.received)});
  auto seconds = [](double s) {
    return format_ms(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s)));
  };
  response.headers.push_back({"x-tokenization-time", seconds(e.tokenization_seconds)});
  response.headers.push_back({"x-queue-time", seconds(e.queue_seconds)});
  response.headers.push_back({"x-inference-time", seconds(e.inference_seconds)});
  return settle(*c.ctx, std::move(response), c.received, c.inputs, tokens);
}

// A large result encoded in pieces on several workers; the last piece done answers.
struct PieceEncoding {
  PieceEncoding(const Completion& c, Clock::duration engine_time, Result<Embeddings> result, std::size_t pieces)
      : c(c), engine_time(engine_time), result(std::move(result)), pieces(pieces), left(pieces) {}
  Completion c;
  Clock::duration engine_time;
  Result<Embeddings> result;
  std::vector<std::string> pieces;
  std::atomic<std::size_t> left;
};

void encode_in_pieces(const Completion& c, Clock::duration engine_time, Result<Embeddings> result,
                      std::size_t pieces) {
  const std::size_t rows = result->rows;
  auto job = std::make_shared<PieceEncoding>(c, engine_time, std::move(result), pieces);
  for (std::size_t k = 0; k < pieces; ++k) {
    c.ctx->post_work([job, k, begin = rows * k / pieces, end = rows * (k + 1) / pieces] {
      append_rows(job->pieces[k], job->c.format, *job->result, begin, end);
      if (job->left.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
      // Head, rows and tail leave in one gathered write: joining them copied the whole body.
      std::vector<std::string> body;
      body.reserve(job->pieces.size() + 2);
      body.push_back(encode_head(job->c.format));
      for (auto& p : job->pieces) body.push_back(std::move(p));
      body.push_back(encode_tail(job->c.format, *job->result));
      job->c.exchange->respond(answer(job->c, job->engine_time, std::move(job->result), std::move(body)));
    });
  }
}

// The engine's completion callback (on an executor thread, or the submitting thread for a
// refusal): it only hands the result on, so the executor goes back to its batches at once.
void on_resolved(const Completion& c, Result<Embeddings> result) {
  const auto engine_time = Clock::now() - c.submitted;
  const bool large = result.ok() && result->data.size() > kInlineEncodeFloats;
  // A large result (32 x 512 floats take ~0.45 ms to print on one thread) goes out in pieces
  // (ServerOptions::encode_piece_floats).
  const std::size_t piece = std::max<std::size_t>(1, c.ctx->options.encode_piece_floats);
  if (large && result->data.size() >= 2 * piece && result->rows >= 2) {
    const std::size_t pieces = std::min({result->rows, result->data.size() / piece,
                                         static_cast<std::size_t>(std::max(1, c.ctx->options.workers))});
    if (pieces >= 2) return encode_in_pieces(c, engine_time, std::move(result), pieces);
  }
  auto make = [c, engine_time, result = std::move(result)]() mutable {
    return answer(c, engine_time, std::move(result));
  };
  if (large) {
    return c.ctx->post_work([c, make = std::move(make)]() mutable { c.exchange->respond(make()); });
  }
  c.exchange->respond_with(std::move(make));
}

void submit(ServiceContext& ctx, const HttpRequest& request,
            std::shared_ptr<HttpExchange> exchange, EmbedJob job) {
  auto slot = ctx.slot();
  if (!slot) {
    return fail(ctx, *exchange, make_error(Kind::kUnavailable, "model is not loaded yet"),
                job.flavor, request.received);
  }
  if (auto error = validate(ctx, *slot, job)) {
    return fail(ctx, *exchange, *error, job.flavor, request.received);
  }
  auto priority = resolve_priority(request, job);
  if (!priority.ok()) return fail(ctx, *exchange, priority.error(), job.flavor, request.received);
  const std::size_t n = job.inputs.size();
  if (!ctx.admission.try_acquire(n)) {
    return fail(ctx, *exchange, make_error(Kind::kOverloaded, "Model is overloaded"), job.flavor,
                request.received);
  }
  job.options.priority = priority.value();
  CancellationToken token;
  job.options.cancel = token;
  exchange->on_disconnect([token] { token.cancel(); });
  Completion c{&ctx, exchange, slot->compute_type, request.received, Clock::now(), n, 0,
               job.flavor, job.field, std::move(job.format)};
  for (const auto& t : job.inputs.texts) c.characters += count_characters(t);
  auto done = [c = std::move(c)](Result<Embeddings> result) { on_resolved(c, std::move(result)); };
  if (job.inputs.is_tokens) {
    slot->engine->embed_tokens_async(std::move(job.inputs.ids), job.options, std::move(done));
  } else {
    slot->engine->embed_async(std::move(job.inputs.texts), job.options, std::move(done));
  }
}

}  // namespace

void handle_tei_embed(ServiceContext& ctx, HttpRequest request,
                      std::shared_ptr<HttpExchange> exchange) {
  auto parsed = parse_tei_embed(request.body);
  if (!parsed.ok()) return fail(ctx, *exchange, parsed.error(), ApiFlavor::kTei, request.received);
  auto& r = parsed.value();
  EmbedJob job;
  job.flavor = ApiFlavor::kTei;
  job.field = "inputs";
  job.inputs = std::move(r.inputs);
  job.options.normalize = r.normalize;
  job.options.truncate = r.truncate.value_or(ctx.options.auto_truncate);
  job.options.truncation_direction = r.truncation_direction;
  job.options.dimensions = r.dimensions;
  job.priority = r.priority;
  job.format = EmbeddingsFormat{};
  submit(ctx, request, std::move(exchange), std::move(job));
}

void handle_openai_embed(ServiceContext& ctx, HttpRequest request,
                         std::shared_ptr<HttpExchange> exchange) {
  auto parsed = parse_openai_embed(request.body);
  if (!parsed.ok()) {
    return fail(ctx, *exchange, parsed.error(), ApiFlavor::kOpenAi, request.received);
  }
  auto& r = parsed.value();
  EmbedJob job;
  job.flavor = ApiFlavor::kOpenAi;
  job.field = "input";
  job.inputs = std::move(r.inputs);
  job.options.normalize = true;  // OpenAI embeddings are unit length (TEI does the same)
  job.options.truncate = ctx.options.auto_truncate;
  job.options.dimensions = r.dimensions;
  job.priority = r.priority;
  auto slot = ctx.slot();
  std::string model = slot ? slot->model_name : std::string();
  job.format = EmbeddingsFormat{EmbeddingsFormat::Kind::kOpenAi, model, r.base64};
  submit(ctx, request, std::move(exchange), std::move(job));
}

void handle_tokenize(ServiceContext& ctx, HttpRequest request,
                     std::shared_ptr<HttpExchange> exchange) {
  const auto received = request.received;
  auto parsed = parse_tokenize(request.body);
  if (!parsed.ok()) return fail(ctx, *exchange, parsed.error(), ApiFlavor::kTei, received);
  auto slot = ctx.slot();
  if (!slot) {
    return fail(ctx, *exchange, make_error(Kind::kUnavailable, "model is not loaded yet"),
                ApiFlavor::kTei, received);
  }
  const auto& texts = parsed.value().texts;
  if (texts.size() > ctx.options.max_client_batch_size) {
    return fail(ctx, *exchange,
                make_error(Kind::kTooLarge, "batch size " + std::to_string(texts.size()) +
                                                " > maximum allowed batch size " +
                                                std::to_string(ctx.options.max_client_batch_size),
                           "inputs"),
                ApiFlavor::kTei, received);
  }
  const bool add_special = parsed.value().add_special_tokens;
  auto tokens = slot->engine->tokenize_with_offsets(texts, add_special);
  if (!tokens.ok()) {
    return fail(ctx, *exchange, from_status(tokens.status(), "inputs"), ApiFlavor::kTei, received);
  }
  // As TEI: a special token shows its vocabulary string and no offsets; any other token the
  // bytes of the input it came from, with their byte offsets.
  std::string body = "[";
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < tokens->size(); ++i) {
    const TokenizedText& t = (*tokens)[i];
    const auto strings = slot->engine->id_to_tokens(t.ids);
    body += i ? ",[" : "[";
    for (std::size_t j = 0; j < t.ids.size(); ++j) {
      if (j) body += ',';
      body += "{\"id\":" + std::to_string(t.ids[j]) + ",\"text\":";
      const auto [begin, end] = t.offsets[j];
      if (slot->special_ids.count(t.ids[j])) {
        body += json_quote(strings[j]);
        body += ",\"special\":true,\"start\":null,\"stop\":null}";
      } else {
        body += json_quote(std::string_view(texts[i]).substr(begin, end - begin));
        body += ",\"special\":false,\"start\":" + std::to_string(begin) + ",\"stop\":" + std::to_string(end) + "}";
      }
    }
    body += ']';
    total += t.ids.size();
  }
  body += ']';
  exchange->respond(settle(ctx, json_response(200, std::move(body)), received, texts.size(), total));
}

}  // namespace embd::server
