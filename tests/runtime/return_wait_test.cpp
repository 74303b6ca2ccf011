// Return wait (SchedulerOptions::return_wait): callers answered a moment ago are waited for, so
// a loop of callers shares one batch; a lone caller, large batches, other classes and callers
// gone quiet are not waited for. Driven through next_batch()/complete() directly, so every
// wait is decided by the scheduler's rule and not by thread timing.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include "fake_runner.h"

namespace embd::runtime {
namespace {

using namespace std::chrono_literals;
using testing::text;
using Future = std::future<Result<Embeddings>>;

constexpr std::size_t kHidden = 8;

SchedulerOptions options(std::chrono::microseconds wait, std::chrono::microseconds horizon) {
  SchedulerOptions o;
  o.max_batch_tokens = 4096;
  o.batch_fill_delay = 0us;
  o.ageing_step = std::chrono::hours(1);
  o.return_wait = wait;
  o.return_horizon = horizon;
  return o;
}

// Runs the scheduler's executor side by hand.
struct Loop {
  explicit Loop(SchedulerOptions o) : scheduler(o, kHidden) {}

  // The batch ready now, without waiting (nullopt: none, or the scheduler would wait).
  std::optional<ScheduledBatch> take_now(ClassMask classes = kAllClasses) {
    return scheduler.next_batch(stop.get_token(), /*wait=*/false, classes);
  }
  // Answers every request of the batch.
  void answer(ScheduledBatch& batch) {
    const std::vector<float> rows(batch.slots.size() * kHidden, 1.0f);
    scheduler.complete(batch, ok_status(), rows, 0);
  }
  // Submits `n` one-text requests of `priority` and `tokens` tokens each.
  std::vector<Future> submit(std::size_t n, Priority priority = Priority::kInteractive,
                             std::size_t tokens = 4) {
    EmbedOptions o;
    o.priority = priority;
    std::vector<Future> fs;
    for (std::size_t i = 0; i < n; ++i) fs.push_back(scheduler.submit({text(++tag, tokens)}, o));
    return fs;
  }
  // n callers submit, are batched together and answered.
  void answer_callers(std::size_t n, Priority priority = Priority::kInteractive) {
    auto fs = submit(n, priority);
    auto batch = take_now();
    ASSERT_TRUE(batch.has_value());
    ASSERT_EQ(batch->slots.size(), n);
    answer(*batch);
    for (auto& f : fs) ASSERT_TRUE(f.get().ok());
  }

  Scheduler scheduler;
  std::stop_source stop;
  std::int32_t tag = 0;
};

TEST(ReturnWait, CallersInALoopShareABatch) {
  Loop loop(options(std::chrono::minutes(10), std::chrono::minutes(10)));
  loop.answer_callers(3);
  auto first = loop.submit(1);
  EXPECT_FALSE(loop.take_now().has_value());  // two answered callers are still out
  auto second = loop.submit(1);
  EXPECT_FALSE(loop.take_now().has_value());
  auto third = loop.submit(1);
  auto batch = loop.take_now();  // every answered caller is back
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->slots.size(), 3u);
  loop.answer(*batch);
}

TEST(ReturnWait, ALoneCallerNeverWaits) {
  Loop loop(options(std::chrono::minutes(10), std::chrono::minutes(10)));
  for (int round = 0; round < 3; ++round) loop.answer_callers(1);
}

TEST(ReturnWait, WakesAWaitingExecutorWhenTheLastCallerReturns) {
  Loop loop(options(std::chrono::minutes(10), std::chrono::minutes(10)));
  loop.answer_callers(2);
  auto first = loop.submit(1);
  auto taken = std::async(std::launch::async, [&] {
    return loop.scheduler.next_batch(loop.stop.get_token(), /*wait=*/true, kAllClasses);
  });
  EXPECT_EQ(taken.wait_for(20ms), std::future_status::timeout);  // waiting for the second caller
  auto second = loop.submit(1);
  ASSERT_EQ(taken.wait_for(20s), std::future_status::ready);
  auto batch = taken.get();
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->slots.size(), 2u);
  loop.answer(*batch);
}

TEST(ReturnWait, EndsOnceTheOldestQueuedRequestWaitedReturnWait) {
  Loop loop(options(30ms, std::chrono::minutes(10)));
  loop.answer_callers(2);
  const auto start = Clock::now();  // before the request arrives: the wait counts from then
  auto only = loop.submit(1);
  auto batch = loop.scheduler.next_batch(loop.stop.get_token(), /*wait=*/true, kAllClasses);
  ASSERT_TRUE(batch.has_value());
  EXPECT_GE(Clock::now() - start, 30ms);  // the other caller never came
  EXPECT_EQ(batch->slots.size(), 1u);
  loop.answer(*batch);
}

TEST(ReturnWait, ForgetsCallersAnsweredBeforeTheHorizon) {
  Loop loop(options(std::chrono::minutes(10), 20ms));
  loop.answer_callers(2);
  std::this_thread::sleep_for(30ms);
  auto late = loop.submit(1);
  auto batch = loop.take_now();  // the other caller no longer counts as about to return
  ASSERT_TRUE(batch.has_value());
  loop.answer(*batch);
}

TEST(ReturnWait, NotForAQueueOfReturnFillTokensOrMore) {
  auto o = options(std::chrono::minutes(10), std::chrono::minutes(10));
  o.return_fill_tokens = 16;
  Loop loop(o);
  loop.answer_callers(2);
  auto big = loop.submit(1, Priority::kInteractive, /*tokens=*/16);
  auto batch = loop.take_now();  // a batch this big gains nothing from company
  ASSERT_TRUE(batch.has_value());
  loop.answer(*batch);
}

TEST(ReturnWait, NotForCallersOfALargeBatch) {
  auto o = options(std::chrono::minutes(10), std::chrono::minutes(10));
  o.return_fill_tokens = 12;
  Loop loop(o);
  loop.answer_callers(3);  // 3 x 4 tokens: a batch of return_fill_tokens, no longer small
  auto first = loop.submit(1);
  auto batch = loop.take_now();  // the device is busy enough: no waiting for the other two
  ASSERT_TRUE(batch.has_value());
  loop.answer(*batch);
}

TEST(ReturnWait, OnlyForCallersOfTheExecutorsClasses) {
  Loop loop(options(std::chrono::minutes(10), std::chrono::minutes(10)));
  loop.answer_callers(2, Priority::kBatch);
  auto query = loop.submit(1, Priority::kQuery);
  const ClassMask queries = class_bit(Priority::kQuery);
  auto batch = loop.take_now(queries);  // the callers still out are bulk ones: not this lane's
  ASSERT_TRUE(batch.has_value());
  loop.answer(*batch);
}

TEST(ReturnWait, OffAtZero) {
  Loop loop(options(0us, std::chrono::minutes(10)));
  loop.answer_callers(3);
  auto first = loop.submit(1);
  auto batch = loop.take_now();
  ASSERT_TRUE(batch.has_value());
  loop.answer(*batch);
}

}  // namespace
}  // namespace embd::runtime
