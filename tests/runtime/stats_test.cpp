// Stats: histogram bucketing and the EngineStats snapshot.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "runtime/stats.h"

namespace embd::runtime {
namespace {

TEST(AtomicHistogram, CumulativeBucketsWithOverflow) {
  AtomicHistogram h({1, 2, 4});
  for (double v : {0.5, 1.0, 1.5, 3.0, 4.0, 9.0}) h.observe(v);
  const Histogram s = h.snapshot();
  EXPECT_EQ(s.bounds, (std::vector<double>{1, 2, 4}));
  EXPECT_EQ(s.counts, (std::vector<std::uint64_t>{2, 3, 5, 6}));  // <=1, <=2, <=4, all
  EXPECT_EQ(s.count, 6u);
  EXPECT_DOUBLE_EQ(s.sum, 19.0);
}

TEST(AtomicHistogram, ConcurrentObserversLoseNothing) {
  AtomicHistogram h({10, 100});
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&h, t] {
      for (int i = 0; i < 1000; ++i) h.observe(static_cast<double>((i + t) % 200));
    });
  }
  for (auto& t : threads) t.join();
  const Histogram s = h.snapshot();
  EXPECT_EQ(s.count, 8000u);
  EXPECT_EQ(s.counts.back(), 8000u);
}

TEST(Stats, SnapshotCarriesCountersAndGauges) {
  Stats stats;
  stats.record_submitted();
  stats.record_submitted();
  stats.record_completed();
  stats.record_failed();
  stats.record_rejected_overloaded();
  stats.record_rejected_invalid();
  stats.record_cancelled();
  stats.record_deadline_exceeded();
  stats.record_batch(100, 3, 0.002, true);
  stats.record_batch(50, 1, 0.001, false);
  stats.set_queue({1, 2, 3}, 77);
  stats.record_queue_time(0.0005);
  const EngineStats s = stats.snapshot();
  EXPECT_EQ(s.requests_submitted, 2u);
  EXPECT_EQ(s.requests_completed, 1u);
  EXPECT_EQ(s.requests_failed, 1u);
  EXPECT_EQ(s.rejected_overloaded, 1u);
  EXPECT_EQ(s.rejected_invalid, 1u);
  EXPECT_EQ(s.cancelled, 1u);
  EXPECT_EQ(s.deadline_exceeded, 1u);
  EXPECT_EQ(s.batches, 2u);
  EXPECT_EQ(s.tokens_embedded, 100u);  // the failed batch embedded nothing
  EXPECT_EQ(s.queued_requests[0], 1u);
  EXPECT_EQ(s.queued_requests[2], 3u);
  EXPECT_EQ(s.queued_tokens, 77u);
  EXPECT_EQ(s.batch_tokens.count, 2u);
  EXPECT_DOUBLE_EQ(s.batch_requests.sum, 4.0);
  EXPECT_EQ(s.queue_time_seconds.count, 1u);
}

}  // namespace
}  // namespace embd::runtime
