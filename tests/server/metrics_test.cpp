// Prometheus rendering of server and engine metrics.
#include <gtest/gtest.h>

#include "server/metrics.h"

namespace embd::server {
namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos ||
         text.rfind(line + "\n", 0) == 0;
}

TEST(Metrics, ServerCountersAndDurationHistogram) {
  ServerMetrics m;
  m.record_request();
  m.record_request();
  m.record_request();
  m.record_success(0.003, 2, 10);
  m.record_success(20.0, 1, 5);
  m.record_failure("overloaded");
  const std::string text = m.render(nullptr);
  EXPECT_TRUE(has_line(text, "# TYPE te_request_count counter")) << text;
  EXPECT_TRUE(has_line(text, "te_request_count 3")) << text;
  EXPECT_TRUE(has_line(text, "te_request_success 2")) << text;
  EXPECT_TRUE(has_line(text, "te_request_failure{err=\"overloaded\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "te_request_failure{err=\"validation\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "te_embed_count 3")) << text;
  EXPECT_TRUE(has_line(text, "te_request_duration_bucket{le=\"0.0025\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "te_request_duration_bucket{le=\"0.005\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "te_request_duration_bucket{le=\"10\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "te_request_duration_bucket{le=\"+Inf\"} 2")) << text;
  EXPECT_TRUE(has_line(text, "te_request_duration_count 2")) << text;
  EXPECT_TRUE(has_line(text, "te_request_duration_sum 20.003")) << text;
  EXPECT_EQ(text.find("te_queue_size"), std::string::npos);  // no engine yet
}

TEST(Metrics, EngineStats) {
  EngineStats s;
  s.queued_requests[0] = 2;
  s.queued_requests[2] = 5;
  s.queued_tokens = 700;
  s.batches = 9;
  s.batch_tokens.bounds = {128, 1024};
  s.batch_tokens.counts = {3, 8, 9};  // with a trailing +Inf entry
  s.batch_tokens.count = 9;
  s.batch_tokens.sum = 4000;
  s.queue_time_seconds.bounds = {0.001, 0.01};
  s.queue_time_seconds.counts = {1, 4};  // without one
  s.queue_time_seconds.count = 6;
  s.queue_time_seconds.sum = 0.5;
  ServerMetrics m;
  const std::string text = m.render(&s);
  EXPECT_TRUE(has_line(text, "te_queue_size 7")) << text;
  EXPECT_TRUE(has_line(text, "te_queue_size_by_priority{priority=\"batch\"} 5")) << text;
  EXPECT_TRUE(has_line(text, "te_queue_tokens 700")) << text;
  EXPECT_TRUE(has_line(text, "# TYPE te_batch_tokens histogram")) << text;
  EXPECT_TRUE(has_line(text, "te_batch_tokens_bucket{le=\"128\"} 3")) << text;
  EXPECT_TRUE(has_line(text, "te_batch_tokens_bucket{le=\"1024\"} 8")) << text;
  EXPECT_TRUE(has_line(text, "te_batch_tokens_bucket{le=\"+Inf\"} 9")) << text;
  EXPECT_TRUE(has_line(text, "te_batch_tokens_sum 4000")) << text;
  EXPECT_TRUE(has_line(text, "te_queue_duration_bucket{le=\"0.01\"} 4")) << text;
  EXPECT_TRUE(has_line(text, "te_queue_duration_bucket{le=\"+Inf\"} 6")) << text;
  EXPECT_TRUE(has_line(text, "embd_engine_batches_total 9")) << text;
  EXPECT_TRUE(has_line(text, "# TYPE te_inference_duration histogram")) << text;
  EXPECT_TRUE(has_line(text, "# TYPE te_batch_next_size histogram")) << text;
}

}  // namespace
}  // namespace embd::server
