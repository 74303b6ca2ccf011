#include "metrics.h"

#include <charconv>
#include <cmath>

namespace embd::server {
namespace {

void append_number(std::string& out, double value) {
  if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
    return;
  }
  if (std::isnan(value)) {
    out += "NaN";
    return;
  }
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out.append(buffer, ec == std::errc() ? end : buffer);
}

void append_header(std::string& out, std::string_view name, std::string_view help,
                   std::string_view type) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void append_sample(std::string& out, std::string_view name, std::string_view labels,
                   double value) {
  out.append(name);
  if (!labels.empty()) out.append("{").append(labels).append("}");
  out += ' ';
  append_number(out, value);
  out += '\n';
}

void append_scalar(std::string& out, std::string_view name, std::string_view help,
                   std::string_view type, double value) {
  append_header(out, name, help, type);
  append_sample(out, name, "", value);
}

std::uint64_t load(const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); }

void append_engine(std::string& out, const EngineStats& s) {
  const std::uint64_t queued = s.queued_requests[0] + s.queued_requests[1] + s.queued_requests[2];
  append_scalar(out, "te_queue_size", "Requests waiting in the engine's queue", "gauge",
                double(queued));
  append_header(out, "te_queue_size_by_priority", "Queued requests per priority class", "gauge");
  const char* names[3] = {"priority=\"query\"", "priority=\"interactive\"", "priority=\"batch\""};
  for (int p = 0; p < 3; ++p) {
    append_sample(out, "te_queue_size_by_priority", names[p], double(s.queued_requests[p]));
  }
  append_scalar(out, "te_queue_tokens", "Tokens waiting in the engine's queue", "gauge",
                double(s.queued_tokens));
  append_histogram(out, "te_queue_duration", "Seconds a request waited before its batch ran",
                   s.queue_time_seconds);
  append_histogram(out, "te_inference_duration", "Seconds per device batch (forward pass)",
                   s.inference_time_seconds);
  append_histogram(out, "te_batch_tokens", "Tokens per device batch", s.batch_tokens);
  append_histogram(out, "te_batch_next_size", "Requests per device batch", s.batch_requests);
  struct Counter {
    const char* name;
    const char* help;
    std::uint64_t value;
  };
  const Counter counters[] = {
      {"embd_engine_requests_submitted_total", "Requests submitted to the engine",
       s.requests_submitted},
      {"embd_engine_requests_completed_total", "Engine requests completed", s.requests_completed},
      {"embd_engine_requests_failed_total", "Engine requests failed", s.requests_failed},
      {"embd_engine_rejected_overloaded_total", "Engine requests rejected for back-pressure",
       s.rejected_overloaded},
      {"embd_engine_rejected_invalid_total", "Engine requests rejected as invalid",
       s.rejected_invalid},
      {"embd_engine_cancelled_total", "Engine requests cancelled", s.cancelled},
      {"embd_engine_deadline_exceeded_total", "Engine requests past their deadline",
       s.deadline_exceeded},
      {"embd_engine_tokens_total", "Tokens embedded", s.tokens_embedded},
      {"embd_engine_batches_total", "Device batches run", s.batches},
  };
  for (const auto& c : counters) append_scalar(out, c.name, c.help, "counter", double(c.value));
}

}  // namespace

void ServerMetrics::record_request() { requests_.fetch_add(1, std::memory_order_relaxed); }

void ServerMetrics::record_success(double seconds, std::uint64_t inputs, std::uint64_t tokens) {
  successes_.fetch_add(1, std::memory_order_relaxed);
  inputs_.fetch_add(inputs, std::memory_order_relaxed);
  tokens_.fetch_add(tokens, std::memory_order_relaxed);
  std::size_t bucket = 0;
  while (bucket < kDurationBounds.size() && seconds > kDurationBounds[bucket]) ++bucket;
  duration_buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  duration_sum_us_.fetch_add(static_cast<std::uint64_t>(std::max(0.0, seconds) * 1e6),
                             std::memory_order_relaxed);
}

void ServerMetrics::record_failure(std::string_view error_label) {
  for (std::size_t i = 0; i < kErrorLabels.size(); ++i) {
    if (kErrorLabels[i] == error_label) {
      failures_[i].fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  failures_.back().fetch_add(1, std::memory_order_relaxed);
}

std::string ServerMetrics::render(const EngineStats* engine) const {
  std::string out;
  out.reserve(8192);
  append_scalar(out, "te_request_count", "Embedding and tokenize requests received", "counter",
                double(load(requests_)));
  append_scalar(out, "te_request_success", "Requests answered with 200", "counter",
                double(load(successes_)));
  append_header(out, "te_request_failure", "Requests answered with an error, by kind", "counter");
  for (std::size_t i = 0; i < kErrorLabels.size(); ++i) {
    append_sample(out, "te_request_failure", "err=\"" + std::string(kErrorLabels[i]) + "\"",
                  double(load(failures_[i])));
  }
  append_scalar(out, "te_embed_count", "Inputs embedded by successful requests", "counter",
                double(load(inputs_)));
  append_scalar(out, "te_request_tokens", "Tokens in successful requests", "counter",
                double(load(tokens_)));
  append_scalar(out, "te_request_in_flight", "Requests accepted and not yet answered", "gauge",
                double(in_flight_.load(std::memory_order_relaxed)));
  Histogram duration;
  duration.bounds.assign(kDurationBounds.begin(), kDurationBounds.end());
  std::uint64_t cumulative = 0;
  for (const auto& bucket : duration_buckets_) {
    cumulative += load(bucket);
    duration.counts.push_back(cumulative);
  }
  duration.count = cumulative;
  duration.sum = double(load(duration_sum_us_)) * 1e-6;
  append_histogram(out, "te_request_duration", "Seconds from request received to response ready",
                   duration);
  if (engine) append_engine(out, *engine);
  return out;
}

std::string_view failure_label(int http_status, bool empty_input) {
  if (empty_input) return "empty";
  switch (http_status) {
    case 400:
    case 422: return "validation";
    case 413: return "too_large";
    case 429: return "overloaded";
    case 401: return "unauthorized";
    case 499: return "cancelled";
    case 503:
    case 504: return "unavailable";
    default: return "backend";
  }
}

void append_histogram(std::string& out, std::string_view name, std::string_view help,
                      const Histogram& h) {
  append_header(out, name, help, "histogram");
  const std::string bucket = std::string(name) + "_bucket";
  // counts may carry a trailing +Inf entry (counts.size() == bounds.size() + 1) or not.
  for (std::size_t i = 0; i < h.bounds.size(); ++i) {
    const std::uint64_t c = i < h.counts.size() ? h.counts[i] : h.count;
    std::string le = "le=\"";
    append_number(le, h.bounds[i]);
    le += '"';
    append_sample(out, bucket, le, double(c));
  }
  append_sample(out, bucket, "le=\"+Inf\"", double(h.count));
  append_sample(out, std::string(name) + "_sum", "", h.sum);
  append_sample(out, std::string(name) + "_count", "", double(h.count));
}

}  // namespace embd::server
