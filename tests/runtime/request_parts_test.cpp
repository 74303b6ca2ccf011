// PartsJoin: the parts of one request answered as one, whatever order they finish in, from
// several threads, with the first error winning and `done` running exactly once.
#include "runtime/request_parts.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace embd::runtime {
namespace {

// `rows` rows of width 2 whose values are first, first + 1, ...
Embeddings rows_from(float first, std::size_t rows, double seconds) {
  Embeddings e;
  e.rows = rows;
  e.dim = 2;
  for (std::size_t i = 0; i < rows * 2; ++i) e.data.push_back(first + static_cast<float>(i));
  e.token_counts.assign(rows, static_cast<std::uint32_t>(first));
  e.tokenization_seconds = seconds;
  e.queue_seconds = seconds;
  e.inference_seconds = seconds;
  return e;
}

// The first part holds whole texts up to the fraction of the text, never past it: 512 texts of
// one size split 128 + 384 (one full device batch first, not 129 texts and a batch of one).
TEST(HeadPart, TakesWholeTextsUpToTheFraction) {
  const std::vector<std::string> even(512, std::string(600, 'a'));
  EXPECT_EQ(head_part_size(even, 1000, 4), 128u);
  EXPECT_EQ(head_part_size(even, 1000, 8), 64u);
  std::vector<std::string> uneven{std::string(50, 'a'), std::string(20, 'b'), std::string(20, 'c'),
                                  std::string(10, 'd')};
  EXPECT_EQ(head_part_size(uneven, 10, 4), 1u);  // the first text alone is over a quarter
  EXPECT_EQ(head_part_size(uneven, 10, 2), 1u);  // 50 of 100: adding 20 would pass half
  uneven[0] = std::string(10, 'a');              // 10 + 20 of 60 is exactly half
  EXPECT_EQ(head_part_size(uneven, 10, 2), 2u);
  EXPECT_EQ(head_part_size(uneven, 1000, 2), 0u);  // too little text to split
  EXPECT_EQ(head_part_size(std::vector<std::string>{std::string(5000, 'a')}, 10, 4), 0u);  // one text
  const std::vector<std::string> two{std::string(10, 'a'), std::string(10, 'b')};
  EXPECT_EQ(head_part_size(two, 10, 1), 1u);  // never every text
}

TEST(PartsJoin, JoinsRowsInPartOrderWhateverOrderTheyArrive) {
  std::vector<Result<Embeddings>> seen;
  PartsJoin join(3, [&](Result<Embeddings> r) { seen.push_back(std::move(r)); });
  join.deliver(2, rows_from(100, 1, 3e-9));
  join.deliver(0, rows_from(0, 2, 1e-9));
  EXPECT_TRUE(seen.empty());
  EXPECT_FALSE(join.resolved());
  join.deliver(1, rows_from(10, 1, 2e-9));
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(join.resolved());
  ASSERT_TRUE(seen[0].ok());
  const Embeddings& e = *seen[0];
  EXPECT_EQ(e.rows, 4u);
  EXPECT_EQ(e.dim, 2u);
  EXPECT_EQ(e.data, (std::vector<float>{0, 1, 2, 3, 10, 11, 100, 101}));
  EXPECT_EQ(e.token_counts, (std::vector<std::uint32_t>{0, 0, 10, 100}));
  EXPECT_DOUBLE_EQ(e.tokenization_seconds, 6e-9);  // summed
  EXPECT_DOUBLE_EQ(e.queue_seconds, 1e-9);         // the first part's
  EXPECT_NEAR(e.inference_seconds, 6e-9, 1e-18);   // summed (less than the time since the start)
}

TEST(PartsJoin, TakesSharedRowsWhole) {
  // Parts that wrote into shared rows carry no data: the joined result is the shared buffer.
  auto rows = std::make_shared<SharedRows>(3);
  std::vector<Result<Embeddings>> seen;
  PartsJoin join(2, [&](Result<Embeddings> r) { seen.push_back(std::move(r)); }, rows);
  for (std::size_t i = 0; i < 3; ++i) {
    auto row = rows->row(i, 2);
    row[0] = static_cast<float>(i);
    row[1] = static_cast<float>(10 * i);
  }
  auto part = [](std::size_t n) {
    Embeddings e = rows_from(0, n, 0);
    e.data.clear();
    return e;
  };
  join.deliver(1, part(1));
  join.deliver(0, part(2));
  ASSERT_EQ(seen.size(), 1u);
  ASSERT_TRUE(seen[0].ok());
  EXPECT_EQ(seen[0]->rows, 3u);
  EXPECT_EQ(seen[0]->data, (std::vector<float>{0, 0, 1, 10, 2, 20}));
}

TEST(SharedRows, RowsFromManyThreads) {
  constexpr std::size_t kRows = 64, kDim = 8;
  SharedRows rows(kRows);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&rows, t] {
      for (std::size_t i = t; i < kRows; i += 4) {
        for (float& v : rows.row(i, kDim)) v = static_cast<float>(i);
      }
    });
  }
  for (auto& t : threads) t.join();
  const auto data = rows.take();
  ASSERT_EQ(data.size(), kRows * kDim);
  for (std::size_t i = 0; i < data.size(); ++i) EXPECT_EQ(data[i], static_cast<float>(i / kDim)) << i;
}

TEST(SharedRows, NothingWrittenIsEmpty) {
  SharedRows rows(5);
  EXPECT_TRUE(rows.take().empty());
}

// reserve() sizes the buffer before any row is written (the Engine does it on the caller's
// thread); rows written later land in it, and a second reserve() changes nothing.
TEST(SharedRows, ReserveSizesTheBufferUpFront) {
  SharedRows rows(3);
  rows.reserve(2);
  rows.reserve(7);  // already sized: ignored
  const std::span<float> r = rows.row(1, 2);
  r[0] = 1.5f;
  r[1] = 2.5f;
  EXPECT_EQ(rows.take(), (std::vector<float>{0, 0, 1.5f, 2.5f, 0, 0}));
}

TEST(PartsJoin, DeviceTimeIsCappedAtTheTimeSinceTheStart) {
  // Parts that rode in the same batch both count its time: the sum may exceed the wall time.
  const auto start = std::chrono::steady_clock::now();
  double inference = -1;
  PartsJoin join(2, [&](Result<Embeddings> r) { inference = r->inference_seconds; });
  join.deliver(0, rows_from(0, 1, 0));
  join.deliver(1, rows_from(1, 1, 100));
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(inference, 0.0);
  EXPECT_LE(inference, elapsed);
}

TEST(PartsJoin, FirstErrorAnswersAndLaterOutcomesAreDropped) {
  int calls = 0;
  Status last;
  PartsJoin join(2, [&](Result<Embeddings> r) {
    ++calls;
    last = r.ok() ? Status() : r.status();
  });
  join.deliver(1, Status(ErrorCode::kInputTooLong, "input 7 is too long"));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(last.code(), ErrorCode::kInputTooLong);
  EXPECT_TRUE(join.resolved());
  join.deliver(0, rows_from(0, 1, 0));
  join.deliver(1, Status(ErrorCode::kCancelled, "late"));
  join.deliver(5, rows_from(0, 1, 0));  // no such part: ignored
  EXPECT_EQ(calls, 1);
}

TEST(PartsJoin, PartsFromManyThreadsAnswerOnce) {
  constexpr std::size_t kParts = 16;
  for (int round = 0; round < 50; ++round) {
    std::atomic<int> calls{0};
    std::size_t rows = 0;
    PartsJoin join(kParts, [&](Result<Embeddings> r) {
      calls.fetch_add(1);
      rows = r.ok() ? r->rows : 0;
    });
    std::vector<std::thread> threads;
    for (std::size_t k = 0; k < kParts; ++k) {
      threads.emplace_back([&join, k] { join.deliver(k, rows_from(static_cast<float>(k), 1, 0)); });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(calls.load(), 1);
    EXPECT_EQ(rows, kParts);
  }
}

}  // namespace
}  // namespace embd::runtime
