// Stress: many threads submit random requests (mixed lengths, priorities, dimensions, some
// cancelled, some with deadlines) to two fake devices, through futures and through completion
// callbacks. Every request must resolve exactly once, with the same rows as each text embedded
// alone or with an error the request allows. Run it under ThreadSanitizer (the tsan preset) as
// well.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <random>
#include <thread>

#include "fake_runner.h"

namespace embd::runtime {
namespace {

using namespace std::chrono_literals;
using testing::expected_row;
using testing::FakeConfig;
using testing::Harness;

// A callback request's outcome, written by its callback. `calls` counts the callback's runs.
struct CallbackSlot {
  std::atomic<int> calls{0};
  std::promise<Result<Embeddings>> outcome;
};

struct Submitted {
  std::vector<std::vector<std::int32_t>> seqs;
  EmbedOptions options;
  bool cancelled = false;
  std::future<Result<Embeddings>> future;  // from submit(), or the callback's `outcome`
  std::shared_ptr<CallbackSlot> callback;  // null for a future request
};

std::vector<std::int32_t> random_text(std::mt19937& rng) {
  std::uniform_int_distribution<int> pick(0, 99);
  const int p = pick(rng);
  // Mostly short, some long, a few longer than the batch budget.
  const std::size_t len = p < 70 ? 1 + rng() % 32 : p < 97 ? 33 + rng() % 200 : 600 + rng() % 200;
  std::vector<std::int32_t> ids(len);
  for (auto& id : ids) id = 1 + static_cast<std::int32_t>(rng() % 30000);
  return ids;
}

// Half of the requests take a callback; it counts its runs (check() wants exactly one) and
// hands the first outcome over through a promise, so check() treats both kinds alike.
Submitted submit_random(Scheduler& s, std::mt19937& rng) {
  Submitted sub;
  const std::size_t n = 1 + rng() % 6;
  for (std::size_t i = 0; i < n; ++i) sub.seqs.push_back(random_text(rng));
  sub.options.priority = static_cast<Priority>(rng() % 3);
  sub.options.normalize = rng() % 4 != 0;
  const std::size_t dims[] = {0, 0, 3, 8};
  sub.options.dimensions = dims[rng() % 4];
  const int kind = static_cast<int>(rng() % 10);
  if (kind == 0) {
    sub.options.deadline = Clock::now() + std::chrono::microseconds(rng() % 3000) - 1ms;
  } else if (kind == 1) {
    sub.options.cancel.emplace();
  }
  if (rng() % 2 == 0) {
    sub.callback = std::make_shared<CallbackSlot>();
    sub.future = sub.callback->outcome.get_future();
    s.submit(sub.seqs, sub.options, [slot = sub.callback](Result<Embeddings> r) {
      if (slot->calls.fetch_add(1) == 0) slot->outcome.set_value(std::move(r));
    });
  } else {
    sub.future = s.submit(sub.seqs, sub.options);
  }
  if (kind == 1 && rng() % 2 == 0) {
    if (rng() % 2 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 500));
    sub.options.cancel->cancel();
    sub.cancelled = true;
  }
  return sub;
}

// Checks one outcome; returns its error code (kOk on success).
ErrorCode check(Submitted& sub, std::size_t hidden) {
  if (sub.future.wait_for(60s) != std::future_status::ready) {
    ADD_FAILURE() << "future never resolved";
    return ErrorCode::kInternal;
  }
  auto r = sub.future.get();
  if (sub.callback) {
    EXPECT_EQ(sub.callback->calls.load(), 1);
  }
  if (!r.ok()) {
    const ErrorCode c = r.status().code();
    const bool allowed = c == ErrorCode::kOverloaded ||
                         (c == ErrorCode::kCancelled && sub.cancelled) ||
                         (c == ErrorCode::kDeadlineExceeded && sub.options.deadline.has_value());
    EXPECT_TRUE(allowed) << r.status().to_string();
    return c;
  }
  EXPECT_EQ(r->rows, sub.seqs.size());
  for (std::size_t i = 0; i < sub.seqs.size() && i < r->rows; ++i) {
    const auto want =
        expected_row(sub.seqs[i], hidden, sub.options.dimensions, sub.options.normalize);
    const auto got = r->row(i);
    EXPECT_TRUE(std::equal(got.begin(), got.end(), want.begin(), want.end()));
    EXPECT_EQ(r->token_counts[i], sub.seqs[i].size());
  }
  return ErrorCode::kOk;
}

SchedulerOptions stress_options() {
  SchedulerOptions o;
  o.max_batch_tokens = 512;
  o.max_batch_requests = 32;
  o.max_queued_tokens = 1u << 17;  // low enough that overload happens now and then
  o.batch_fill_delay = 200us;
  o.ageing_step = 5ms;
  return o;
}

// pipeline > 1: the executors pipeline (start the next batch before delivering the current).
// `classes`: one executor per entry, taking those priority classes (default: two taking all).
void every_future_resolves_with_alone_results(
    std::size_t pipeline, const std::vector<ClassMask>& classes = {kAllClasses, kAllClasses}) {
  FakeConfig cfg;
  cfg.pipeline = pipeline;
  Harness h(stress_options(), cfg, classes);
  constexpr int kThreads = 64;
  constexpr int kPerThread = 100;
  std::vector<std::vector<Submitted>> per_thread(kThreads);
  std::atomic<bool> done{false};
  std::thread reader([&] {  // stats are read while everything runs
    while (!done.load()) {
      (void)h.scheduler->stats().snapshot();
      std::this_thread::sleep_for(1ms);
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(1234 + t);
      for (int i = 0; i < kPerThread; ++i) {
        per_thread[t].push_back(submit_random(*h.scheduler, rng));
        // Some callers wait for their answer before the next request, some fire and forget.
        if (t % 2 == 0) per_thread[t].back().future.wait();
      }
    });
  }
  for (auto& t : threads) t.join();
  std::map<ErrorCode, int> outcomes;
  for (auto& subs : per_thread) {
    for (auto& sub : subs) ++outcomes[check(sub, h.hidden)];
  }
  done = true;
  reader.join();
  const auto s = h.scheduler->stats().snapshot();
  EXPECT_GT(outcomes[ErrorCode::kOk], kThreads * kPerThread / 4);
  EXPECT_EQ(s.requests_completed, static_cast<std::uint64_t>(outcomes[ErrorCode::kOk]));
  EXPECT_EQ(s.rejected_overloaded, static_cast<std::uint64_t>(outcomes[ErrorCode::kOverloaded]));
  EXPECT_EQ(s.cancelled, static_cast<std::uint64_t>(outcomes[ErrorCode::kCancelled]));
  EXPECT_EQ(s.deadline_exceeded,
            static_cast<std::uint64_t>(outcomes[ErrorCode::kDeadlineExceeded]));
  EXPECT_EQ(s.requests_failed, 0u);
  EXPECT_EQ(s.queued_tokens, 0u);
  for (const auto& [code, n] : outcomes) {
    std::printf("%-20s %d\n", std::string(error_code_name(code)).c_str(), n);
  }
  std::printf("batches %llu, tokens %llu\n", static_cast<unsigned long long>(s.batches),
              static_cast<unsigned long long>(s.tokens_embedded));
}

TEST(SchedulerStress, EveryFutureResolvesWithAloneResults) { every_future_resolves_with_alone_results(1); }
TEST(SchedulerStress, PipelinedEveryFutureResolvesWithAloneResults) {
  every_future_resolves_with_alone_results(2);
}
// The engine's GPU layout with query lanes: per device, one executor for everything but
// queries and one (the query lane) for queries only.
TEST(SchedulerStress, QueryLanesEveryFutureResolvesWithAloneResults) {
  const ClassMask queries = class_bit(Priority::kQuery);
  const auto bulk = static_cast<ClassMask>(kAllClasses & ~queries);
  every_future_resolves_with_alone_results(2, {bulk, bulk, queries, queries});
}

void shutdown_under_load_resolves_everything(std::size_t pipeline) {
  FakeConfig cfg;
  cfg.per_token = 1us;
  cfg.pipeline = pipeline;
  auto h = std::make_unique<Harness>(stress_options(), cfg, 2);
  constexpr int kThreads = 16;
  std::vector<std::vector<Submitted>> per_thread(kThreads);
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(99 + t);
      while (!stop.load()) per_thread[t].push_back(submit_random(*h->scheduler, rng));
    });
  }
  std::this_thread::sleep_for(150ms);
  h->scheduler->stop();  // as the engine does: stop the queue, then join the executors
  stop = true;
  for (auto& t : threads) t.join();
  h->pool.clear();
  std::size_t total = 0;
  for (auto& subs : per_thread) {
    for (auto& sub : subs) {
      ++total;
      ASSERT_EQ(sub.future.wait_for(0s), std::future_status::ready);
      if (sub.callback) {
        ASSERT_EQ(sub.callback->calls.load(), 1);
      }
      auto r = sub.future.get();
      if (r.ok()) continue;
      const ErrorCode c = r.status().code();
      EXPECT_TRUE(c == ErrorCode::kUnavailable || c == ErrorCode::kOverloaded ||
                  c == ErrorCode::kCancelled || c == ErrorCode::kDeadlineExceeded)
          << r.status().to_string();
    }
  }
  EXPECT_GT(total, 0u);
  h.reset();
}

}  // namespace
TEST(SchedulerStress, ShutdownUnderLoadResolvesEverything) { shutdown_under_load_resolves_everything(1); }
TEST(SchedulerStress, PipelinedShutdownUnderLoadResolvesEverything) {
  shutdown_under_load_resolves_everything(2);
}

}  // namespace embd::runtime
