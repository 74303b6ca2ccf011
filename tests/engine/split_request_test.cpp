// A large request queued in two parts (LoadOptions::split_large_requests, on by default on
// GPUs) answers exactly as one request: same rows, token counts and order, through futures and
// callbacks, and errors that name the input by its index in the whole request.
#include <gtest/gtest.h>

#include <cstdlib>
#include <future>
#include <string>
#include <vector>

#include "common/golden.h"
#include "embd/embd.hpp"

namespace embd {
namespace {

std::unique_ptr<Engine> load_split(bool split) {
  LoadOptions options;
  // EMBD_TEST_THREADS=1 under ThreadSanitizer (see engine_test.cpp).
  const char* threads = std::getenv("EMBD_TEST_THREADS");
  options.threads = threads ? std::atoi(threads) : 2;
  options.split_large_requests = split;
  options.max_length = 512;  // the longest test text has about 330 tokens
  auto engine = Engine::load(testing::model_dir("tiny-jina"), options);
  EXPECT_TRUE(engine.ok()) << engine.status().to_string();
  return engine.ok() ? std::move(engine).value() : nullptr;
}

// Texts of varied lengths, 60 KB in all: large enough to be split.
std::vector<std::string> large_request() {
  const char* words[] = {"search", "engine", "vectors", "of", "the", "quick", "brown", "fox",
                         "embedding", "jumps", "over", "lazy", "dogs", "naïve", "café"};
  std::vector<std::string> texts;
  std::size_t bytes = 0;
  for (std::size_t i = 0; bytes < 60 * 1024; ++i) {
    std::string t;
    for (std::size_t w = 0; w < 20 + (i * 37) % 300; ++w) {
      if (w) t += ' ';
      t += words[(i * 7 + w * 3) % std::size(words)];
    }
    bytes += t.size();
    texts.push_back(std::move(t));
  }
  return texts;
}

void expect_same(const Embeddings& got, const Embeddings& want) {
  ASSERT_EQ(got.rows, want.rows);
  ASSERT_EQ(got.dim, want.dim);
  ASSERT_EQ(got.data.size(), want.data.size());
  EXPECT_EQ(got.token_counts, want.token_counts);
  for (std::size_t i = 0; i < want.data.size(); ++i) ASSERT_NEAR(got.data[i], want.data[i], 1e-6) << i;
}

TEST(SplitRequests, AnswerAsOneRequest) {
  auto split = load_split(true), whole = load_split(false);
  ASSERT_TRUE(split && whole);
  const auto texts = large_request();
  auto want = whole->embed(texts).get();
  ASSERT_TRUE(want.ok()) << want.status().to_string();
  auto got = split->embed(texts).get();
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  expect_same(*got, *want);
  EXPECT_GT(got->tokenization_seconds, 0.0);
  EXPECT_GT(got->inference_seconds, 0.0);
  // Two scheduler requests, so the split engine ran at least two batches for one call.
  EXPECT_GE(split->stats().requests_completed, 2u);

  std::promise<Result<Embeddings>> answered;
  int calls = 0;
  split->embed_async(texts, {}, [&](Result<Embeddings> r) {
    ++calls;
    answered.set_value(std::move(r));
  });
  auto async = answered.get_future().get();
  ASSERT_TRUE(async.ok()) << async.status().to_string();
  expect_same(*async, *want);
  EXPECT_EQ(calls, 1);

  // Truncated, unnormalised rows land in the shared output the same way.
  EmbedOptions narrow;
  narrow.dimensions = 8;
  narrow.normalize = false;
  auto narrow_want = whole->embed(texts, narrow).get();
  auto narrow_got = split->embed(texts, narrow).get();
  ASSERT_TRUE(narrow_want.ok() && narrow_got.ok());
  expect_same(*narrow_got, *narrow_want);

  // Small requests are never split.
  auto small = split->embed({"one text", "and another"}).get();
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->rows, 2u);
}

TEST(SplitRequests, ErrorsNameTheInputInTheWholeRequest) {
  auto split = load_split(true);
  ASSERT_TRUE(split);
  const auto texts = large_request();
  for (std::size_t bad : {std::size_t{0}, std::size_t{1}, texts.size() / 2, texts.size() - 1}) {
    auto with_bad = texts;
    with_bad[bad] += "\xff";
    auto r = split->embed(with_bad).get();
    ASSERT_FALSE(r.ok()) << bad;
    // Named once, by its place in the whole request (no part-relative index).
    EXPECT_NE(r.status().message().find("input " + std::to_string(bad) + ":"), std::string::npos)
        << r.status().message();
    EXPECT_EQ(r.status().message().find("item"), std::string::npos) << r.status().message();

    auto too_long = texts;
    for (int k = 0; k < 800; ++k) too_long[bad] += " word";
    auto refused = split->embed(too_long).get();
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), ErrorCode::kInputTooLong);
    EXPECT_NE(refused.status().message().find("input " + std::to_string(bad) + " "), std::string::npos)
        << refused.status().message();
    EmbedOptions truncate;
    truncate.truncate = true;
    auto cut = split->embed(too_long, truncate).get();
    ASSERT_TRUE(cut.ok()) << cut.status().to_string();
    EXPECT_EQ(cut->rows, texts.size());
  }
  // The engine still answers normally afterwards.
  EXPECT_TRUE(split->embed(texts).get().ok());
}

}  // namespace
}  // namespace embd
