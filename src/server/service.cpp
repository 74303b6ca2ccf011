// Request policies and response helpers shared by the routes (no engine calls: unit-testable).
#include "service.h"

#include <algorithm>
#include <charconv>

namespace embd::server {

using Clock = std::chrono::steady_clock;

bool Admission::try_acquire(std::size_t n) {
  std::size_t used = used_.load(std::memory_order_acquire);
  do {
    if (n > capacity_ || used > capacity_ - n) return false;
  } while (!used_.compare_exchange_weak(used, used + n, std::memory_order_acq_rel));
  return true;
}

Priority default_priority(std::size_t inputs, std::size_t total_bytes) {
  if (inputs == 1 && total_bytes <= 1024) return Priority::kQuery;
  if (inputs >= 16 || total_bytes >= 32768) return Priority::kBatch;
  return Priority::kInteractive;
}

std::size_t token_upper_bound(std::size_t bytes, std::size_t specials, std::size_t max_length,
                              bool truncate) {
  const std::size_t bound = bytes + specials;
  return truncate && max_length ? std::min(bound, max_length) : bound;
}

std::size_t count_characters(std::string_view text) {
  std::size_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

std::string format_ms(Clock::duration d) {
  // std::to_chars, not snprintf: four of these go out with every response.
  char buffer[32];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer),
                                       std::chrono::duration<double, std::milli>(d).count(),
                                       std::chars_format::fixed, 3);
  return ec == std::errc() ? std::string(buffer, end) : std::string("0.000");
}

HttpResponse json_response(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.content_type = "application/json";
  response.body = std::move(body);
  return response;
}

HttpResponse error_response(const ApiError& error, ApiFlavor flavor) {
  return json_response(http_status(error, flavor), error_body(error, flavor));
}

ApiFlavor flavor_for(std::string_view path) {
  return path.starts_with("/v1/") || path == "/embeddings" ? ApiFlavor::kOpenAi : ApiFlavor::kTei;
}

}  // namespace embd::server
