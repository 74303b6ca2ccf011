// Scheduler + Executor behaviour with fake devices: results, splitting and budgets, ordering and
// ageing, fill delay, back-pressure, deadlines, cancellation, shutdown, faults, stats.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <future>
#include <thread>

#include "fake_runner.h"

namespace embd::runtime {
namespace {

using namespace std::chrono_literals;
using testing::BatchLog;
using testing::expected_row;
using testing::FakeConfig;
using testing::Harness;
using testing::text;
using Future = std::future<Result<Embeddings>>;
using Seqs = std::vector<std::vector<std::int32_t>>;

constexpr auto kWait = 20s;  // generous: only a hang trips it

SchedulerOptions options(std::size_t tokens = 4096, std::size_t requests = 64) {
  SchedulerOptions o;
  o.max_batch_tokens = tokens;
  o.max_batch_requests = requests;
  o.batch_fill_delay = 0us;
  o.ageing_step = std::chrono::hours(1);
  return o;
}

EmbedOptions with_priority(Priority p) {
  EmbedOptions o;
  o.priority = p;
  return o;
}

Result<Embeddings> get(Future& f) {
  if (f.wait_for(kWait) != std::future_status::ready) {
    ADD_FAILURE() << "future not resolved";
    return Status(ErrorCode::kInternal, "timeout");
  }
  return f.get();
}

bool ready_now(const Future& f) { return f.wait_for(0s) == std::future_status::ready; }

void expect_rows(const Result<Embeddings>& r, const Seqs& seqs, std::size_t hidden,
                 std::size_t dimensions = 0, bool normalize = true) {
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->rows, seqs.size());
  ASSERT_EQ(r->dim, dimensions == 0 ? hidden : dimensions);
  ASSERT_EQ(r->data.size(), r->rows * r->dim);
  for (std::size_t i = 0; i < seqs.size(); ++i) {
    EXPECT_EQ(r->token_counts[i], seqs[i].size());
    const auto want = expected_row(seqs[i], hidden, dimensions, normalize);
    const auto got = r->row(i);
    EXPECT_TRUE(std::equal(got.begin(), got.end(), want.begin(), want.end())) << "row " << i;
  }
}

// Index of the first logged batch holding a sequence that starts with `tag`, or -1.
int batch_of(const std::vector<BatchLog::Entry>& log, std::int32_t tag) {
  for (std::size_t b = 0; b < log.size(); ++b) {
    for (const auto& s : log[b].sequences) {
      if (!s.empty() && s[0] == tag) return static_cast<int>(b);
    }
  }
  return -1;
}

// Tags of the sequences in log order.
std::vector<std::int32_t> tag_order(const std::vector<BatchLog::Entry>& log) {
  std::vector<std::int32_t> tags;
  for (const auto& e : log) {
    for (const auto& s : e.sequences) tags.push_back(s[0]);
  }
  return tags;
}

TEST(SchedulerOptions, TakesEveryBudgetFromLoadOptions) {
  LoadOptions load;
  load.max_batch_tokens = 111;
  load.max_batch_requests = 7;
  load.max_queued_tokens = 999;
  load.max_queued_requests = 33;
  load.batch_fill_delay = 12us;
  load.return_wait = 34us;
  load.ageing_step = 0us;
  const auto o = SchedulerOptions::from(load);
  EXPECT_EQ(o.max_batch_tokens, 111u);
  EXPECT_EQ(o.max_batch_requests, 7u);
  EXPECT_EQ(o.max_queued_tokens, 999u);
  EXPECT_EQ(o.max_queued_requests, 33u);
  EXPECT_EQ(o.batch_fill_delay, 12us);
  EXPECT_EQ(o.return_wait, 34us);
  EXPECT_EQ(o.ageing_step, 0us);
}

TEST(Scheduler, EmbedsLikeEachTextAlone) {
  Harness h(options());
  const Seqs seqs = {text(1, 5), text(2, 17), text(3, 1)};
  auto f = h.scheduler->submit(seqs, {});
  expect_rows(get(f), seqs, h.hidden);
}

TEST(Scheduler, TruncatesDimensionsThenNormalizes) {
  Harness h(options());
  const Seqs seqs = {text(1, 9), text(2, 4)};
  EmbedOptions o;
  o.dimensions = 3;
  auto f = h.scheduler->submit(seqs, o);
  auto r = get(f);
  expect_rows(r, seqs, h.hidden, 3, true);
  for (std::size_t i = 0; i < r->rows; ++i) {
    double n = 0;
    for (float v : r->row(i)) n += double(v) * v;
    EXPECT_NEAR(std::sqrt(n), 1.0, 1e-6);
  }
  o.normalize = false;
  auto raw = h.scheduler->submit(seqs, o);
  auto rr = get(raw);
  expect_rows(rr, seqs, h.hidden, 3, false);
  const auto full = testing::fake_row(seqs[0], h.hidden);
  EXPECT_EQ(rr->row(0)[2], full[2]);  // a plain prefix of the pooled row
}

TEST(Scheduler, PartsWriteTheirRowsIntoSharedRows) {
  // Two requests as the parts of one (the engine's split requests): each writes its rows at its
  // offset of one buffer, truncated and normalised, and resolves without data of its own.
  Harness h(options(64));
  const Seqs head = {text(1, 40), text(2, 7)}, tail = {text(3, 50), text(4, 1), text(5, 30)};
  auto rows = std::make_shared<SharedRows>(head.size() + tail.size());
  EmbedOptions o;
  o.dimensions = 5;
  std::promise<Result<Embeddings>> first, second;
  h.scheduler->submit(head, o, [&](Result<Embeddings> r) { first.set_value(std::move(r)); }, 0,
                      RowTarget{rows, 0});
  h.scheduler->submit(tail, o, [&](Result<Embeddings> r) { second.set_value(std::move(r)); }, 0,
                      RowTarget{rows, head.size()});
  for (auto* p : {&first, &second}) {
    auto f = p->get_future();
    auto r = get(f);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_TRUE(r->data.empty());
    EXPECT_EQ(r->dim, 5u);
  }
  const std::vector<float> data = rows->take();
  ASSERT_EQ(data.size(), 5u * 5u);
  Seqs all = head;
  all.insert(all.end(), tail.begin(), tail.end());
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto want = expected_row(all[i], h.hidden, 5, true);
    EXPECT_TRUE(std::equal(want.begin(), want.end(), data.begin() + static_cast<std::ptrdiff_t>(i * 5)))
        << "row " << i;
  }
  // A target too small for the request is a caller's bug, answered as an error.
  std::promise<Result<Embeddings>> misfit;
  h.scheduler->submit(tail, o, [&](Result<Embeddings> r) { misfit.set_value(std::move(r)); }, 0,
                      RowTarget{rows, 3});
  auto m = misfit.get_future().get();
  EXPECT_EQ(m.status().code(), ErrorCode::kInternal);
}

TEST(Scheduler, ZeroRowStaysZeroWhenNormalized) {
  Harness h(options());
  auto f = h.scheduler->submit({std::vector<std::int32_t>(6, 0)}, {});
  auto r = get(f);
  ASSERT_TRUE(r.ok());
  for (float v : r->data) EXPECT_EQ(v, 0.0f);
}

TEST(Scheduler, EmptyRequestResolvesAtOnce) {
  Harness h(options());
  auto f = h.scheduler->submit({}, {});
  ASSERT_TRUE(ready_now(f));
  auto r = f.get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rows, 0u);
  EXPECT_EQ(r->dim, h.hidden);
}

TEST(Scheduler, RejectsInvalidInputNamingIt) {
  Harness h(options());
  auto empty_seq = h.scheduler->submit({text(1, 3), {}}, {});
  ASSERT_TRUE(ready_now(empty_seq));
  auto r = empty_seq.get();
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("input 1"), std::string::npos) << r.status().message();
  EmbedOptions o;
  o.dimensions = h.hidden + 1;
  auto wide = h.scheduler->submit({text(1, 3)}, o);
  auto w = wide.get();
  EXPECT_EQ(w.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(w.status().message().find("dimensions"), std::string::npos);
  EXPECT_EQ(h.scheduler->stats().snapshot().rejected_invalid, 2u);
}

TEST(Scheduler, SplitsLargeRequestUnderTokenBudget) {
  Harness h(options(250));
  Seqs seqs;
  for (int i = 0; i < 10; ++i) seqs.push_back(text(10 + i, 100));
  auto f = h.scheduler->submit(seqs, {});
  expect_rows(get(f), seqs, h.hidden);
  const auto log = h.log->entries();
  EXPECT_EQ(log.size(), 5u);
  for (const auto& e : log) EXPECT_LE(e.tokens, 250u);
}

TEST(Scheduler, SequenceLongerThanBudgetRunsAlone) {
  Harness h(options(100));
  const Seqs seqs = {text(1, 30), text(2, 500), text(3, 30)};
  auto f = h.scheduler->submit(seqs, {});
  expect_rows(get(f), seqs, h.hidden);
  const auto log = h.log->entries();
  const int b = batch_of(log, 2);
  ASSERT_GE(b, 0);
  EXPECT_EQ(log[b].sequences.size(), 1u);
  for (const auto& e : log) {
    if (e.sequences.size() > 1) {
      EXPECT_LE(e.tokens, 100u);
    }
  }
}

TEST(Scheduler, CapsSequencesPerBatch) {
  Harness h(options(4096, 3));
  Seqs seqs;
  for (int i = 0; i < 10; ++i) seqs.push_back(text(10 + i, 4));
  auto f = h.scheduler->submit(seqs, {});
  expect_rows(get(f), seqs, h.hidden);
  const auto log = h.log->entries();
  EXPECT_EQ(log.size(), 4u);
  for (const auto& e : log) EXPECT_LE(e.sequences.size(), 3u);
}

TEST(Scheduler, MergesRequestsIntoOneBatchLongestFirst) {
  Harness h(options());
  h.log->close();
  auto blocker = h.scheduler->submit({text(1, 2)}, {});
  h.log->wait_started(1);
  const Seqs a = {text(2, 3), text(3, 9)};
  const Seqs b = {text(4, 5), text(5, 1)};
  const Seqs c = {text(6, 7)};
  auto fa = h.scheduler->submit(a, {});
  auto fb = h.scheduler->submit(b, {});
  auto fc = h.scheduler->submit(c, {});
  h.log->open();
  expect_rows(get(fa), a, h.hidden);
  expect_rows(get(fb), b, h.hidden);
  expect_rows(get(fc), c, h.hidden);
  const auto log = h.log->entries();
  ASSERT_EQ(log.size(), 2u);
  std::vector<std::size_t> lengths;
  for (const auto& s : log[1].sequences) lengths.push_back(s.size());
  EXPECT_EQ(lengths, (std::vector<std::size_t>{9, 7, 5, 3, 1}));
}

TEST(Scheduler, HigherPriorityFirst) {
  Harness h(options(4096, 1));
  h.log->close();
  auto blocker = h.scheduler->submit({text(1, 2)}, with_priority(Priority::kBatch));
  h.log->wait_started(1);
  auto b = h.scheduler->submit({text(2, 2)}, with_priority(Priority::kBatch));
  auto i = h.scheduler->submit({text(3, 2)}, with_priority(Priority::kInteractive));
  auto q = h.scheduler->submit({text(4, 2)}, with_priority(Priority::kQuery));
  h.log->open();
  for (auto* f : {&blocker, &b, &i, &q}) ASSERT_TRUE(get(*f).ok());
  EXPECT_EQ(tag_order(h.log->entries()), (std::vector<std::int32_t>{1, 4, 3, 2}));
}

TEST(Scheduler, FifoWithinAClass) {
  Harness h(options(4096, 1));
  h.log->close();
  auto blocker = h.scheduler->submit({text(1, 2)}, {});
  h.log->wait_started(1);
  std::vector<Future> fs;
  for (int t = 2; t <= 6; ++t) fs.push_back(h.scheduler->submit({text(t, 2)}, {}));
  h.log->open();
  for (auto& f : fs) ASSERT_TRUE(get(f).ok());
  EXPECT_EQ(tag_order(h.log->entries()), (std::vector<std::int32_t>{1, 2, 3, 4, 5, 6}));
}

// The executor is saturated by bulk work; a query submitted later runs in the very next batch.
TEST(Scheduler, QueryWaitsAtMostOneBatch) {
  Harness h(options(64));
  h.log->close();
  Seqs bulk;
  for (int i = 0; i < 40; ++i) bulk.push_back(text(100 + i, 32));  // 20 batches of 2
  auto fb = h.scheduler->submit(bulk, with_priority(Priority::kBatch));
  h.log->wait_started(1);
  const Seqs query = {text(7, 16)};
  auto fq = h.scheduler->submit(query, with_priority(Priority::kQuery));
  h.log->open();
  expect_rows(get(fq), query, h.hidden);
  expect_rows(get(fb), bulk, h.hidden);
  const auto log = h.log->entries();
  EXPECT_EQ(batch_of(log, 7), 1);  // right after the batch that was in flight
  EXPECT_EQ(log.size(), 21u);      // and the query did not break the bulk batches apart
}

TEST(Scheduler, QueryBatchTakesLimitedFiller) {
  auto o = options(4096);
  o.query_fill_tokens = 64;
  Harness h(o);
  h.log->close();
  auto blocker = h.scheduler->submit({text(1, 8)}, with_priority(Priority::kBatch));
  h.log->wait_started(1);
  Seqs bulk;
  for (int i = 0; i < 40; ++i) bulk.push_back(text(100 + i, 32));  // 1280 tokens: one batch alone
  auto fb = h.scheduler->submit(bulk, with_priority(Priority::kBatch));
  const Seqs query = {text(7, 16)};
  auto fq = h.scheduler->submit(query, with_priority(Priority::kQuery));
  h.log->open();
  expect_rows(get(fq), query, h.hidden);
  expect_rows(get(fb), bulk, h.hidden);
  ASSERT_TRUE(get(blocker).ok());
  const auto log = h.log->entries();
  ASSERT_EQ(batch_of(log, 7), 1);
  EXPECT_LE(log[1].tokens, 64u);  // the query plus at most 48 tokens of filler
  EXPECT_EQ(log[1].sequences.size(), 2u);
  EXPECT_EQ(log.size(), 3u);      // the rest of the bulk in one batch
}

// Same without a gate: device time is simulated and the query arrives mid-stream.
TEST(Scheduler, QueryOvertakesRunningBacklog) {
  FakeConfig cfg;
  cfg.per_token = 20us;
  Harness h(options(64), cfg);
  Seqs bulk;
  for (int i = 0; i < 60; ++i) bulk.push_back(text(100 + i, 32));
  auto fb = h.scheduler->submit(bulk, with_priority(Priority::kBatch));
  h.log->wait_started(3);
  const std::size_t started = h.log->entries().size();
  auto fq = h.scheduler->submit({text(7, 16)}, with_priority(Priority::kQuery));
  ASSERT_TRUE(get(fq).ok());
  ASSERT_TRUE(get(fb).ok());
  // Batches [0, started) had begun; the one after may already have been taken off the queue.
  EXPECT_LE(batch_of(h.log->entries(), 7), static_cast<int>(started) + 1);
}

TEST(Scheduler, AgeingServesOldBatchWorkBeforeNewQueries) {
  auto o = options(4096, 1);
  o.ageing_step = 20ms;
  Harness h(o);
  h.log->close();
  auto blocker = h.scheduler->submit({text(1, 2)}, with_priority(Priority::kQuery));
  h.log->wait_started(1);
  auto old_bulk = h.scheduler->submit({text(2, 2), text(3, 2), text(4, 2)},
                                      with_priority(Priority::kBatch));
  std::this_thread::sleep_for(70ms);  // > 3 steps: the bulk class now ranks above a fresh query
  auto q = h.scheduler->submit({text(5, 2)}, with_priority(Priority::kQuery));
  h.log->open();
  ASSERT_TRUE(get(old_bulk).ok());
  ASSERT_TRUE(get(q).ok());
  // One batch for the aged class, whose clock then restarts, so the query goes next.
  EXPECT_EQ(tag_order(h.log->entries()), (std::vector<std::int32_t>{1, 2, 5, 3, 4}));
}

TEST(Scheduler, WithoutAgeingPriorityIsStrict) {
  auto o = options(4096, 1);
  o.ageing_step = 0us;
  Harness h(o);
  h.log->close();
  auto blocker = h.scheduler->submit({text(1, 2)}, with_priority(Priority::kQuery));
  h.log->wait_started(1);
  auto old_bulk = h.scheduler->submit({text(2, 2)}, with_priority(Priority::kBatch));
  std::this_thread::sleep_for(30ms);
  auto q = h.scheduler->submit({text(5, 2)}, with_priority(Priority::kQuery));
  h.log->open();
  ASSERT_TRUE(get(old_bulk).ok());
  ASSERT_TRUE(get(q).ok());
  EXPECT_EQ(tag_order(h.log->entries()), (std::vector<std::int32_t>{1, 5, 2}));
}

TEST(Scheduler, FillDelayLetsArrivalsShareABatch) {
  auto o = options();
  o.batch_fill_delay = 500ms;
  Harness h(o);
  auto a = h.scheduler->submit({text(1, 3)}, {});
  auto b = h.scheduler->submit({text(2, 3)}, {});
  ASSERT_TRUE(get(a).ok());
  ASSERT_TRUE(get(b).ok());
  const auto log = h.log->entries();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].sequences.size(), 2u);
}

TEST(Scheduler, FillDelaySkippedWhenBudgetIsFull) {
  auto o = options(4096, 2);
  o.batch_fill_delay = std::chrono::minutes(10);
  Harness h(o);
  auto f = h.scheduler->submit({text(1, 3), text(2, 3)}, {});
  // Waiting the delay would take ten minutes; a full batch goes at once.
  ASSERT_EQ(f.wait_for(kWait), std::future_status::ready);
  EXPECT_TRUE(f.get().ok());
}

TEST(Scheduler, FillDelayIsBounded) {
  auto o = options();
  o.batch_fill_delay = 30ms;
  Harness h(o);
  auto f = h.scheduler->submit({text(1, 3)}, {});
  EXPECT_TRUE(get(f).ok());
}

TEST(Scheduler, OverloadFailsFast) {
  auto o = options();
  o.max_queued_tokens = 100;
  Harness h(o);
  h.log->close();
  auto blocker = h.scheduler->submit({text(1, 10)}, {});
  h.log->wait_started(1);  // dispatched: no longer counts as queued
  auto a = h.scheduler->submit({text(2, 60)}, {});
  auto b = h.scheduler->submit({text(3, 50)}, {});
  ASSERT_TRUE(ready_now(b));
  EXPECT_EQ(b.get().status().code(), ErrorCode::kOverloaded);
  auto huge = h.scheduler->submit({text(4, 101)}, {});
  ASSERT_TRUE(ready_now(huge));
  EXPECT_EQ(huge.get().status().code(), ErrorCode::kInvalidArgument);
  auto s = h.scheduler->stats().snapshot();
  EXPECT_EQ(s.rejected_overloaded, 1u);
  EXPECT_EQ(s.queued_tokens, 60u);
  EXPECT_EQ(s.queued_requests[static_cast<int>(Priority::kInteractive)], 1u);
  h.log->open();
  EXPECT_TRUE(get(a).ok());
  EXPECT_TRUE(get(blocker).ok());
  EXPECT_EQ(h.scheduler->stats().snapshot().queued_tokens, 0u);
}

TEST(Scheduler, RequestCountBound) {
  auto o = options();
  o.max_queued_requests = 2;
  Harness h(o);
  h.log->close();
  auto blocker = h.scheduler->submit({text(1, 2)}, {});
  h.log->wait_started(1);
  auto a = h.scheduler->submit({text(2, 2)}, {});
  auto b = h.scheduler->submit({text(3, 2)}, {});
  auto c = h.scheduler->submit({text(4, 2)}, {});
  ASSERT_TRUE(ready_now(c));
  EXPECT_EQ(c.get().status().code(), ErrorCode::kOverloaded);
  h.log->open();
  EXPECT_TRUE(get(a).ok());
  EXPECT_TRUE(get(b).ok());
}

TEST(Scheduler, CancelledWorkFreesQueueBudget) {
  auto o = options();
  o.max_queued_tokens = 100;
  Harness h(o);
  h.log->close();
  auto blocker = h.scheduler->submit({text(1, 2)}, {});
  h.log->wait_started(1);
  EmbedOptions eo;
  eo.cancel.emplace();
  auto a = h.scheduler->submit({text(2, 80)}, eo);
  eo.cancel->cancel();
  auto b = h.scheduler->submit({text(3, 80)}, {});  // fits once the cancelled one is swept
  ASSERT_TRUE(ready_now(a));
  EXPECT_EQ(a.get().status().code(), ErrorCode::kCancelled);
  h.log->open();
  EXPECT_TRUE(get(b).ok());
}

TEST(Scheduler, DeadlineDropsWorkBeforeItRuns) {
  Harness h(options());
  h.log->close();
  auto blocker = h.scheduler->submit({text(1, 2)}, {});
  h.log->wait_started(1);
  EmbedOptions eo;
  eo.deadline = Clock::now() + 30ms;
  auto a = h.scheduler->submit({text(2, 2)}, eo);
  std::this_thread::sleep_for(60ms);
  h.log->open();
  auto r = get(a);
  EXPECT_EQ(r.status().code(), ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(batch_of(h.log->entries(), 2), -1);  // never reached the device
  eo.deadline = Clock::now() - 1ms;
  auto late = h.scheduler->submit({text(3, 2)}, eo);
  ASSERT_TRUE(ready_now(late));
  EXPECT_EQ(late.get().status().code(), ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(h.scheduler->stats().snapshot().deadline_exceeded, 2u);
}

TEST(Scheduler, CancelDropsWorkBeforeItRuns) {
  Harness h(options());
  h.log->close();
  auto blocker = h.scheduler->submit({text(1, 2)}, {});
  h.log->wait_started(1);
  EmbedOptions eo;
  eo.cancel.emplace();
  auto a = h.scheduler->submit({text(2, 2)}, eo);
  eo.cancel->cancel();
  h.log->open();
  EXPECT_EQ(get(a).status().code(), ErrorCode::kCancelled);
  EXPECT_EQ(batch_of(h.log->entries(), 2), -1);
  auto again = h.scheduler->submit({text(3, 2)}, eo);  // token already cancelled
  ASSERT_TRUE(ready_now(again));
  EXPECT_EQ(again.get().status().code(), ErrorCode::kCancelled);
  EXPECT_EQ(h.scheduler->stats().snapshot().cancelled, 2u);
}

TEST(Scheduler, CancelStopsTheRestOfASplitRequest) {
  Harness h(options(4096, 1));
  h.log->close();
  EmbedOptions eo;
  eo.cancel.emplace();
  auto f = h.scheduler->submit({text(1, 2), text(2, 2), text(3, 2), text(4, 2)}, eo);
  h.log->wait_started(1);
  eo.cancel->cancel();
  h.log->open();
  EXPECT_EQ(get(f).status().code(), ErrorCode::kCancelled);
  auto next = h.scheduler->submit({text(9, 2)}, {});
  EXPECT_TRUE(get(next).ok());
  EXPECT_EQ(tag_order(h.log->entries()), (std::vector<std::int32_t>{1, 9}));
}

TEST(Scheduler, StopResolvesQueuedAndFinishesInFlight) {
  Harness h(options(4096, 1));
  h.log->close();
  const Seqs first = {text(1, 2)};
  auto in_flight = h.scheduler->submit(first, {});
  h.log->wait_started(1);
  auto b = h.scheduler->submit({text(2, 2)}, {});
  auto c = h.scheduler->submit({text(3, 2), text(4, 2)}, with_priority(Priority::kBatch));
  h.scheduler->stop();
  ASSERT_TRUE(ready_now(b));
  ASSERT_TRUE(ready_now(c));
  EXPECT_EQ(b.get().status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(c.get().status().code(), ErrorCode::kUnavailable);
  auto late = h.scheduler->submit({text(5, 2)}, {});
  ASSERT_TRUE(ready_now(late));
  EXPECT_EQ(late.get().status().code(), ErrorCode::kUnavailable);
  h.log->open();
  expect_rows(get(in_flight), first, h.hidden);
}

TEST(Scheduler, TeardownWithManyExecutorsResolvesEverything) {
  for (bool stop_first : {true, false}) {
    auto h = std::make_unique<Harness>(options(8, 2), FakeConfig{}, 3);
    h->log->close();
    std::vector<Future> fs;
    for (int i = 0; i < 20; ++i) fs.push_back(h->scheduler->submit({text(i + 1, 4)}, {}));
    h->log->wait_started(3);
    std::thread opener([&] {
      std::this_thread::sleep_for(20ms);
      h->log->open();
    });
    if (stop_first) h->scheduler->stop();
    h->pool.clear();  // joins: the batches in flight finish
    h->scheduler.reset();
    opener.join();
    int ok = 0;
    for (auto& f : fs) {
      ASSERT_TRUE(ready_now(f));
      auto r = f.get();
      if (r.ok()) {
        ++ok;
      } else {
        EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
      }
    }
    EXPECT_GE(ok, 3);  // the three batches in flight (at least one text each) were delivered
    h.reset();
  }
}

TEST(Scheduler, DeviceFaultFailsExactlyThatBatch) {
  FakeConfig cfg;
  cfg.poison = 666;
  Harness h(options(4096, 2), cfg);
  h.log->close();
  auto blocker = h.scheduler->submit({text(1, 3)}, {});
  h.log->wait_started(1);
  auto a = h.scheduler->submit({text(2, 3)}, {});
  auto p = h.scheduler->submit({text(666, 3)}, {});
  auto c = h.scheduler->submit({text(3, 3)}, {});
  auto d = h.scheduler->submit({text(4, 3)}, {});
  h.log->open();
  EXPECT_TRUE(get(blocker).ok());
  for (auto* f : {&a, &p}) {
    auto r = get(*f);
    EXPECT_EQ(r.status().code(), ErrorCode::kDeviceError);
    EXPECT_NE(r.status().message().find("fake:0"), std::string::npos) << r.status().message();
  }
  EXPECT_TRUE(get(c).ok());
  EXPECT_TRUE(get(d).ok());
  const auto s = h.scheduler->stats().snapshot();
  EXPECT_EQ(s.requests_failed, 2u);
  EXPECT_EQ(s.requests_completed, 3u);
}

TEST(Scheduler, FaultInOnePartFailsTheWholeRequestOnce) {
  FakeConfig cfg;
  cfg.poison = 666;
  Harness h(options(4096, 1), cfg);
  auto r = h.scheduler->submit({text(1, 2), text(666, 2), text(3, 2)}, {});
  auto other = h.scheduler->submit({text(4, 2)}, {});
  EXPECT_EQ(get(r).status().code(), ErrorCode::kDeviceError);
  EXPECT_TRUE(get(other).ok());
  // The failed request's third text was dropped, not run.
  EXPECT_EQ(batch_of(h.log->entries(), 3), -1);
}

TEST(Scheduler, RunnerExceptionFailsThatBatchOnly) {
  FakeConfig cfg;
  cfg.throw_on = 777;
  Harness h(options(4096, 1), cfg);
  auto bad = h.scheduler->submit({text(777, 2)}, {});
  auto good = h.scheduler->submit({text(2, 2)}, {});
  auto r = get(bad);
  EXPECT_EQ(r.status().code(), ErrorCode::kInternal);
  EXPECT_NE(r.status().message().find("injected exception"), std::string::npos);
  EXPECT_TRUE(get(good).ok());
}

TEST(Scheduler, PipelinedExecutorIsolatesFaultsAndExceptions) {
  FakeConfig cfg;
  cfg.poison = 666;
  cfg.throw_on = 777;
  cfg.pipeline = 2;
  cfg.per_token = 20us;  // batches overlap: the next one starts while the current one "runs"
  Harness h(options(4096, 1), cfg);
  auto a = h.scheduler->submit({text(1, 3)}, {});
  auto poisoned = h.scheduler->submit({text(666, 3)}, {});
  auto thrown = h.scheduler->submit({text(777, 3)}, {});
  auto d = h.scheduler->submit({text(4, 3), text(5, 4)}, {});
  expect_rows(get(a), {text(1, 3)}, h.hidden);
  auto rp = get(poisoned);
  EXPECT_EQ(rp.status().code(), ErrorCode::kDeviceError);
  EXPECT_NE(rp.status().message().find("fake:0"), std::string::npos) << rp.status().message();
  auto rt = get(thrown);
  EXPECT_EQ(rt.status().code(), ErrorCode::kInternal);
  EXPECT_NE(rt.status().message().find("injected exception"), std::string::npos);
  expect_rows(get(d), {text(4, 3), text(5, 4)}, h.hidden);
  const auto s = h.scheduler->stats().snapshot();
  EXPECT_EQ(s.requests_failed, 2u);
  EXPECT_EQ(s.requests_completed, 2u);
}

TEST(Executor, ReportsFactoryErrors) {
  Scheduler scheduler(options(), 8);
  Executor failing(
      scheduler,
      []() -> Result<std::unique_ptr<BatchRunner>> { return device_error("no such device"); },
      "cuda:3");
  const Status s = failing.wait_ready();
  EXPECT_EQ(s.code(), ErrorCode::kDeviceError);
  EXPECT_NE(s.message().find("cuda:3"), std::string::npos);
  FakeConfig wide;
  wide.hidden = 16;
  Executor mismatched(scheduler, testing::fake_factory(wide, nullptr), "cpu");
  EXPECT_EQ(mismatched.wait_ready().code(), ErrorCode::kInternal);
}

TEST(Executor, RunnerLivesOnItsOwnThread) {
  std::thread::id created_on;
  Scheduler scheduler(options(), 8);
  {
    Executor e(scheduler, [&]() -> Result<std::unique_ptr<BatchRunner>> {
      created_on = std::this_thread::get_id();
      return std::unique_ptr<BatchRunner>(
          std::make_unique<testing::FakeRunner>(FakeConfig{}, nullptr));
    });
    ASSERT_TRUE(e.wait_ready().ok());
    EXPECT_NE(created_on, std::this_thread::get_id());
    auto f = scheduler.submit({text(1, 2)}, {});
    EXPECT_TRUE(get(f).ok());  // FakeRunner::run fails if called off its creating thread
  }
}

TEST(Scheduler, ExecutorsShareTheQueue) {
  Harness h(options(4096, 1), FakeConfig{}, 2);
  h.log->close();
  auto a = h.scheduler->submit({text(1, 2)}, {});
  h.log->wait_started(1);
  auto b = h.scheduler->submit({text(2, 2)}, {});
  h.log->wait_started(2);  // the second device took it while the first is busy
  h.log->open();
  EXPECT_TRUE(get(a).ok());
  EXPECT_TRUE(get(b).ok());
  const auto log = h.log->entries();
  EXPECT_NE(log[0].device, log[1].device);
}

// A query lane (an executor for queries only) beside a bulk executor (everything else): a query
// starts at once on the lane while the bulk executor is busy, and each runs only its classes.
TEST(Scheduler, QueryLaneRunsQueriesBesideBusyBulkExecutor) {
  const ClassMask queries = class_bit(Priority::kQuery);
  const auto bulk = static_cast<ClassMask>(kAllClasses & ~queries);
  Harness h(options(64), FakeConfig{}, std::vector<ClassMask>{bulk, queries});
  h.log->close();
  Seqs backlog;
  for (int i = 0; i < 8; ++i) backlog.push_back(text(100 + i, 32));  // 4 batches of 2
  auto fb = h.scheduler->submit(backlog, with_priority(Priority::kBatch));
  h.log->wait_started(1);
  const Seqs query = {text(7, 16)};
  auto fq = h.scheduler->submit(query, with_priority(Priority::kQuery));
  h.log->wait_started(2);  // the lane took the query while the bulk batch is still held
  const Seqs interactive = {text(8, 16)};
  auto fi = h.scheduler->submit(interactive, with_priority(Priority::kInteractive));
  h.log->open();
  expect_rows(get(fq), query, h.hidden);
  expect_rows(get(fi), interactive, h.hidden);
  expect_rows(get(fb), backlog, h.hidden);
  const auto log = h.log->entries();
  ASSERT_EQ(batch_of(log, 7), 1);
  for (const auto& e : log) {
    const bool has_query = std::any_of(e.sequences.begin(), e.sequences.end(),
                                       [](const auto& s) { return s[0] == 7; });
    EXPECT_EQ(e.device, has_query ? "fake:1" : "fake:0");
    if (has_query) {
      EXPECT_EQ(e.sequences.size(), 1u);  // no filler from other classes
    }
  }
}

// An executor told to hand queries over while it waits for work (as the engine tells a GPU's
// first executor once the query lane is up) leaves them to the lane from then on (here for good:
// spill_after is longer than the test).
TEST(Executor, HandOverAppliesWhileWaiting) {
  const ClassMask queries = class_bit(Priority::kQuery);
  auto o = options(64);
  o.spill_after = std::chrono::minutes(10);
  Harness h(o, FakeConfig{}, std::vector<ClassMask>{kAllClasses, queries});
  std::this_thread::sleep_for(20ms);  // both executors are waiting for work by now
  h.pool[0]->hand_over(queries);
  h.log->close();
  auto q1 = h.scheduler->submit({text(1, 8)}, with_priority(Priority::kQuery));
  h.log->wait_started(1);  // the lane holds q1 at the gate
  auto q2 = h.scheduler->submit({text(2, 8)}, with_priority(Priority::kQuery));
  std::this_thread::sleep_for(50ms);  // executor 0 is idle: it would have taken q2 by now
  EXPECT_EQ(h.log->entries().size(), 1u);
  auto b = h.scheduler->submit({text(3, 8)}, with_priority(Priority::kBatch));
  h.log->wait_started(2);  // executor 0 still takes everything else
  h.log->open();
  for (auto* f : {&q1, &q2, &b}) ASSERT_TRUE(get(*f).ok());
  for (const auto& e : h.log->entries()) {
    EXPECT_EQ(e.device, e.sequences[0][0] == 3 ? "fake:0" : "fake:1") << "tag " << e.sequences[0][0];
  }
}

// The executor that handed queries to the lane takes them after all while it is idle and they
// have waited spill_after, that is while the lane is busy (a burst of queries gets both), in
// batches of queries alone; its own work comes first.
TEST(Executor, IdleExecutorTakesHandedOverWorkWhileItsOwnerIsBusy) {
  const ClassMask queries = class_bit(Priority::kQuery);
  auto o = options(64);
  o.spill_after = 50ms;  // far longer than an idle lane takes to wake
  Harness h(o, FakeConfig{}, std::vector<ClassMask>{kAllClasses, queries});
  std::this_thread::sleep_for(20ms);  // both executors are waiting for work by now
  h.pool[0]->hand_over(queries);
  h.log->close();
  auto q1 = h.scheduler->submit({text(1, 8)}, with_priority(Priority::kQuery));
  h.log->wait_started(1);  // q1 is younger than spill_after: the idle lane takes it
  auto q2 = h.scheduler->submit({text(2, 8)}, with_priority(Priority::kQuery));
  h.log->wait_started(2);  // the lane holds q1 at the gate: executor 0 takes q2 once it is ripe
  h.log->open();
  for (auto* f : {&q1, &q2}) ASSERT_TRUE(get(*f).ok());
  const auto first = h.log->entries();
  ASSERT_EQ(first.size(), 2u);
  for (const auto& e : first) {
    EXPECT_EQ(e.device, e.sequences[0][0] == 1 ? "fake:1" : "fake:0") << "tag " << e.sequences[0][0];
  }
  // Queued together, executor 0's own work goes first and is never mixed with a query.
  h.log->close();
  auto hold = h.scheduler->submit({text(3, 8)}, with_priority(Priority::kQuery));
  h.log->wait_started(3);  // one executor holds this query at the gate
  auto b = h.scheduler->submit({text(4, 8)}, with_priority(Priority::kBatch));
  auto q5 = h.scheduler->submit({text(5, 8)}, with_priority(Priority::kQuery));
  h.log->open();
  for (auto* f : {&hold, &b, &q5}) ASSERT_TRUE(get(*f).ok());
  for (const auto& e : h.log->entries()) {
    const bool has_batch = std::any_of(e.sequences.begin(), e.sequences.end(),
                                       [](const auto& s) { return s[0] == 4; });
    if (has_batch) {
      EXPECT_EQ(e.device, "fake:0");
      EXPECT_EQ(e.sequences.size(), 1u);  // no query rides with executor 0's own work
    }
  }
}

// next_batch() with a class mask leaves other classes' work queued, and a budget filled by other
// classes does not count as a full batch for it (so it still honours the fill delay).
TEST(Scheduler, ClassMaskLeavesOtherWorkQueued) {
  auto o = options(64);
  o.batch_fill_delay = std::chrono::minutes(10);
  Scheduler s(o, 8);
  const ClassMask queries = class_bit(Priority::kQuery);
  auto fb = s.submit({text(1, 40), text(2, 40)}, with_priority(Priority::kBatch));  // a full budget
  std::stop_source stop;
  EXPECT_FALSE(s.next_batch(stop.get_token(), /*wait=*/false, queries).has_value());
  auto fq = s.submit({text(7, 8)}, with_priority(Priority::kQuery));
  EXPECT_FALSE(s.next_batch(stop.get_token(), /*wait=*/false, queries).has_value());  // fill delay
  auto batch = s.next_batch(stop.get_token(), /*wait=*/false,
                            static_cast<ClassMask>(kAllClasses & ~queries));
  ASSERT_TRUE(batch.has_value());  // the bulk budget is full: no delay
  ASSERT_EQ(batch->slots.size(), 1u);
  EXPECT_EQ(batch->packed.ids.front(), 1);
  s.complete(*batch, Status(ErrorCode::kInternal, "test device"), {}, 0);
  s.stop();
  auto rb = get(fb);
  auto rq = get(fq);
  ASSERT_FALSE(rb.ok());
  EXPECT_EQ(rb.status().code(), ErrorCode::kInternal);
  ASSERT_FALSE(rq.ok());
  EXPECT_EQ(rq.status().code(), ErrorCode::kUnavailable);  // never taken: resolved by stop()
}

TEST(Scheduler, StatsAddUp) {
  Harness h(options(40, 4));
  std::size_t tokens = 0;
  std::vector<Future> fs;
  for (int i = 0; i < 6; ++i) {
    Seqs seqs = {text(i + 1, 5 + i), text(i + 50, 7)};
    tokens += seqs[0].size() + seqs[1].size();
    fs.push_back(h.scheduler->submit(seqs, with_priority(static_cast<Priority>(i % 3))));
  }
  for (auto& f : fs) ASSERT_TRUE(get(f).ok());
  const auto s = h.scheduler->stats().snapshot();
  const auto log = h.log->entries();
  EXPECT_EQ(s.requests_submitted, 6u);
  EXPECT_EQ(s.requests_completed, 6u);
  EXPECT_EQ(s.requests_failed, 0u);
  EXPECT_EQ(s.tokens_embedded, tokens);
  EXPECT_EQ(s.batches, log.size());
  EXPECT_EQ(s.batch_tokens.count, log.size());
  EXPECT_EQ(s.batch_requests.count, log.size());
  EXPECT_EQ(s.inference_time_seconds.count, log.size());
  EXPECT_EQ(s.queue_time_seconds.count, 6u);
  EXPECT_DOUBLE_EQ(s.batch_tokens.sum, static_cast<double>(tokens));
  EXPECT_DOUBLE_EQ(s.batch_requests.sum, 12.0);
  EXPECT_EQ(s.batch_tokens.counts.back(), s.batch_tokens.count);
  EXPECT_TRUE(std::is_sorted(s.batch_tokens.counts.begin(), s.batch_tokens.counts.end()));
  EXPECT_EQ(s.queued_tokens, 0u);
  for (auto q : s.queued_requests) EXPECT_EQ(q, 0u);
}

}  // namespace
}  // namespace embd::runtime
