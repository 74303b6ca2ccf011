// The public API end to end on the fixture models: text in, the float64 golden out (tokenizer,
// scheduler, executor and CPU backend together), plus its error contract.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <thread>

#include "common/golden.h"
#include "embd/embd.hpp"

namespace embd {
namespace {

// CPU kernel threads: 2, or EMBD_TEST_THREADS. The ThreadSanitizer run uses 1: libgomp is not
// instrumented, so TSan would flag OpenMP's own hand-offs inside a kernel; what it checks here is
// the engine's caller / scheduler / executor threads.
int test_threads() {
  const char* env = std::getenv("EMBD_TEST_THREADS");
  return env ? std::atoi(env) : 2;
}

std::unique_ptr<Engine> load(const std::string& model, LoadOptions options = {}) {
  options.threads = test_threads();
  auto engine = Engine::load(testing::model_dir(model), options);
  EXPECT_TRUE(engine.ok()) << engine.status().to_string();
  return engine.ok() ? std::move(engine).value() : nullptr;
}

TEST(Engine, TextsGiveTheGoldenEmbeddingsInF32) {
  for (const std::string model : {"tiny-jina", "tiny-jina-6h", "tiny-bert"}) {
    auto engine = load(model, {.dtype = "f32"});
    ASSERT_TRUE(engine);
    const auto goldens = testing::load_goldens(model);
    std::vector<std::string> texts;
    for (const auto& g : goldens) texts.push_back(g.text);
    EmbedOptions raw;
    raw.normalize = false;
    raw.truncate = true;  // tiny-bert's goldens truncate texts over 512 tokens
    auto result = engine->embed(texts, raw).get();
    ASSERT_TRUE(result.ok()) << result.status().to_string();
    ASSERT_EQ(result->rows, goldens.size());
    for (std::size_t i = 0; i < goldens.size(); ++i) {
      EXPECT_EQ(result->token_counts[i], goldens[i].ids.size()) << goldens[i].id;
      const auto e = testing::compare(result->row(i).data(), goldens[i].embedding);
      EXPECT_LE(e.rel_l2, 1e-5) << model << " " << goldens[i].id;
      EXPECT_LE(e.max_abs, 1e-5) << model << " " << goldens[i].id;
    }
    EmbedOptions normalized;
    normalized.truncate = true;
    auto unit = engine->embed(texts, normalized).get();
    ASSERT_TRUE(unit.ok());
    for (std::size_t i = 0; i < goldens.size(); ++i) {
      const auto e = testing::compare(unit->row(i).data(), goldens[i].embedding_normalized);
      EXPECT_LE(e.max_abs, 1e-6) << model << " " << goldens[i].id;
    }
  }
}

TEST(Engine, TokenizeMatchesGoldenIds) {
  auto engine = load("tiny-jina");
  ASSERT_TRUE(engine);
  const auto goldens = testing::load_goldens("tiny-jina");
  std::vector<std::string> texts;
  for (const auto& g : goldens) texts.push_back(g.text);
  auto ids = engine->tokenize(texts);
  ASSERT_TRUE(ids.ok());
  for (std::size_t i = 0; i < goldens.size(); ++i) EXPECT_EQ((*ids)[i], goldens[i].ids) << goldens[i].id;
}

TEST(Engine, TooLongInputIsAnErrorUnlessTruncating) {
  auto engine = load("tiny-bert");  // max length 512
  ASSERT_TRUE(engine);
  std::string long_text;
  for (int i = 0; i < 600; ++i) long_text += "hello ";
  auto refused = engine->embed({"short", long_text}).get();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kInputTooLong);
  EXPECT_NE(refused.status().message().find("input 1"), std::string::npos) << refused.status().message();
  EmbedOptions trunc;
  trunc.truncate = true;
  auto cut = engine->embed({"short", long_text}, trunc).get();
  ASSERT_TRUE(cut.ok()) << cut.status().to_string();
  EXPECT_EQ(cut->token_counts[1], 512u);
  trunc.truncation_direction = TruncationDirection::kLeft;
  auto left = engine->embed({long_text}, trunc).get();
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->token_counts[0], 512u);
}

TEST(Engine, BadInputsAreErrorsNamingTheInput) {
  auto engine = load("tiny-jina");
  ASSERT_TRUE(engine);
  EXPECT_EQ(engine->embed({}).get().status().code(), ErrorCode::kInvalidArgument);
  auto bad_utf8 = engine->embed({"fine", std::string("bad \xff byte")}).get();
  ASSERT_FALSE(bad_utf8.ok());
  EXPECT_NE(bad_utf8.status().message().find("input 1"), std::string::npos) << bad_utf8.status().message();
  auto bad_id = engine->embed_tokens({{101, 7592, 102}, {101, 999999, 102}}).get();
  ASSERT_FALSE(bad_id.ok());
  EXPECT_NE(bad_id.status().message().find("input 1 token 1"), std::string::npos);
  auto good_ids = engine->embed_tokens({{101, 7592, 102}}).get();
  ASSERT_TRUE(good_ids.ok());
  auto same_text = engine->embed({"hello"}).get();
  ASSERT_TRUE(same_text.ok());
  for (std::size_t k = 0; k < same_text->dim; ++k) EXPECT_FLOAT_EQ(good_ids->row(0)[k], same_text->row(0)[k]);
}

TEST(Engine, MissingModelIsAClearError) {
  auto r = Engine::load("/nonexistent/model/dir");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("/nonexistent/model/dir"), std::string::npos) << r.status().message();
  auto bad_device = Engine::load(testing::model_dir("tiny-jina"), {.device = "tpu"});
  ASSERT_FALSE(bad_device.ok());
  EXPECT_NE(bad_device.status().message().find("tpu"), std::string::npos);
}

TEST(Engine, ReportsWhereTheTimeWent) {
  auto engine = load("tiny-jina");
  ASSERT_TRUE(engine);
  auto r = engine->embed({"timing", "of a request"}).get();
  ASSERT_TRUE(r.ok());
  EXPECT_GT(r->tokenization_seconds, 0.0);
  EXPECT_GE(r->queue_seconds, 0.0);
  EXPECT_GT(r->inference_seconds, 0.0);
  EXPECT_LT(r->inference_seconds, 60.0);
  const auto stats = engine->stats();
  EXPECT_GE(stats.requests_completed, 1u);
  EXPECT_GE(stats.batches, 1u);
  EXPECT_GE(stats.tokens_embedded, r->token_counts[0] + r->token_counts[1]);
}

TEST(Engine, DimensionsTruncateBeforeNormalising) {
  auto engine = load("tiny-jina");
  ASSERT_TRUE(engine);
  EmbedOptions o;
  o.dimensions = 16;
  auto r = engine->embed({"matryoshka"}, o).get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->dim, 16u);
  double norm = 0;
  for (float v : r->row(0)) norm += double(v) * v;
  EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-6);
}

// Many caller threads at once get exactly what each text gives alone.
TEST(Engine, ConcurrentCallersGetSequentialResults) {
  auto engine = load("tiny-jina", {.dtype = "f32"});
  ASSERT_TRUE(engine);
  const auto goldens = testing::load_goldens("tiny-jina");
  std::vector<std::vector<float>> alone(goldens.size());
  for (std::size_t i = 0; i < goldens.size(); ++i) {
    auto r = engine->embed({goldens[i].text}).get();
    ASSERT_TRUE(r.ok());
    alone[i].assign(r->data.begin(), r->data.end());
  }
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < 10; ++k) {
        const std::size_t i = static_cast<std::size_t>(t * 7 + k * 3) % goldens.size();
        auto r = engine->embed({goldens[i].text}).get();
        if (!r.ok()) { ++mismatches; continue; }
        for (std::size_t d = 0; d < r->dim; ++d) {
          if (std::abs(r->data[d] - alone[i][d]) > 1e-6) { ++mismatches; break; }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace embd
