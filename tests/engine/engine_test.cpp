// The public API end to end on the fixture models: text in, the float64 golden out (tokenizer,
// scheduler, executor and CPU backend together), plus its error contract.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unistd.h>

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
  for (const std::string model : {"tiny-jina", "tiny-jina-6h", "tiny-bert", "tiny-xlmr", "tiny-roberta",
                                    "tiny-mpnet", "tiny-distilbert"}) {
    auto engine = load(model, {.dtype = "f32"});
    ASSERT_TRUE(engine);
    const auto goldens = testing::load_goldens(model);
    std::vector<std::string> texts;
    for (const auto& g : goldens) texts.push_back(g.text);
    EmbedOptions raw;
    raw.normalize = false;
    raw.truncate = true;  // the BERT-family goldens truncate long texts (512 or 128 tokens)
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

// A JinaBERT whose tokenizer is byte-level BPE (as jina-embeddings-v2-base-code's): tiny-jina's
// weights with the roberta-bpe fixture tokenizer. Texts tokenise as the tokenizer alone does
// (<s> ... </s>) and embed exactly as those ids do.
TEST(Engine, ByteLevelBpeModelEmbedsTextAsItsIds) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("embd-bpe-model-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path jina = testing::model_dir("tiny-jina");
  fs::copy_file(jina / "config.json", dir / "config.json", fs::copy_options::overwrite_existing);
  fs::remove(dir / "model.safetensors");
  fs::create_symlink(jina / "model.safetensors", dir / "model.safetensors");
  fs::copy_file(fs::path(testing::fixtures_dir()) / "tokenizers" / "roberta-bpe" / "tokenizer.json",
                dir / "tokenizer.json", fs::copy_options::overwrite_existing);
  auto loaded = Engine::load(dir.string(), {.dtype = "f32", .threads = test_threads()});
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  auto& engine = *loaded;
  EXPECT_NE(engine->info().tokenizer_summary.find("BPE (byte-level)"), std::string::npos)
      << engine->info().tokenizer_summary;
  const std::vector<std::string> texts = {"def f(x):\n    return x * 2\n", "it's 2026 <mask> Größe",
                                          "東京"};
  auto ids = engine->tokenize(texts);
  ASSERT_TRUE(ids.ok()) << ids.status().to_string();
  for (const auto& row : *ids) {
    ASSERT_GE(row.size(), 3u);
    EXPECT_EQ(row.front(), 0);  // <s>
    EXPECT_EQ(row.back(), 2);   // </s>
  }
  EXPECT_NE(std::find((*ids)[1].begin(), (*ids)[1].end(), 4), (*ids)[1].end());  // <mask>
  auto from_text = engine->embed(texts).get();
  auto from_ids = engine->embed_tokens(*ids).get();
  ASSERT_TRUE(from_text.ok()) << from_text.status().to_string();
  ASSERT_TRUE(from_ids.ok()) << from_ids.status().to_string();
  for (std::size_t i = 0; i < texts.size(); ++i) {
    for (std::size_t k = 0; k < from_text->dim; ++k) EXPECT_EQ(from_text->row(i)[k], from_ids->row(i)[k]);
  }
  engine.reset();  // the engine goes before its files
  fs::remove_all(dir);
}

// An XLM-RoBERTa (tiny-xlmr: a Unigram tokenizer, positions from row pad_token_id + 1, so 512 of
// the 514 rows are usable) from ids: the goldens, and the length limit at 512.
TEST(Engine, XlmRobertaGivesTheGoldenEmbeddingsFromIds) {
  auto engine = load("tiny-xlmr", {.dtype = "f32"});
  ASSERT_TRUE(engine);
  EXPECT_EQ(engine->info().architecture, "bert");
  EXPECT_EQ(engine->info().variant, "xlm_roberta");
  EXPECT_EQ(engine->info().max_length, 512u);
  EXPECT_EQ(engine->info().pooling, "mean");

  const auto goldens = testing::load_goldens("tiny-xlmr");
  ASSERT_EQ(goldens.size(), 40u);
  std::vector<std::vector<std::int32_t>> ids;
  for (const auto& g : goldens) ids.push_back(g.ids);
  EmbedOptions raw;
  raw.normalize = false;
  auto result = engine->embed_tokens(ids, raw).get();
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  for (std::size_t i = 0; i < goldens.size(); ++i) {
    const auto e = testing::compare(result->row(i).data(), goldens[i].embedding);
    EXPECT_LE(e.rel_l2, 1e-5) << goldens[i].id;
    EXPECT_LE(e.max_abs, 1e-5) << goldens[i].id;
  }

  // 513 tokens would need row 514 of a 514-row table: refused, or cut to 512.
  std::vector<std::int32_t> long_ids = goldens[35].ids;
  ASSERT_EQ(long_ids.size(), 512u);
  long_ids.insert(long_ids.end() - 1, 5);
  auto refused = engine->embed_tokens({long_ids}).get();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kInputTooLong);
  EXPECT_NE(refused.status().message().find("maximum of 512"), std::string::npos)
      << refused.status().message();
  EmbedOptions trunc = raw;
  trunc.truncate = true;
  auto cut = engine->embed_tokens({long_ids}, trunc).get();
  ASSERT_TRUE(cut.ok()) << cut.status().to_string();
  EXPECT_EQ(cut->token_counts[0], 512u);
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

// Many threads submit through embed_async / embed_tokens_async at once: every callback runs
// exactly once, with what embed() gives for the same text. Run under ThreadSanitizer too.
TEST(Engine, AsyncCallbacksRunOnceWithEmbedResults) {
  auto engine = load("tiny-jina", {.dtype = "f32"});
  ASSERT_TRUE(engine);
  const auto goldens = testing::load_goldens("tiny-jina");
  std::vector<std::vector<float>> alone(goldens.size());
  std::vector<std::vector<std::int32_t>> ids(goldens.size());
  for (std::size_t i = 0; i < goldens.size(); ++i) {
    auto r = engine->embed({goldens[i].text}).get();
    ASSERT_TRUE(r.ok());
    alone[i].assign(r->data.begin(), r->data.end());
    auto t = engine->tokenize({goldens[i].text});
    ASSERT_TRUE(t.ok());
    ids[i] = (*t)[0];
  }
  constexpr int kThreads = 16;
  constexpr int kPerThread = 12;
  struct Outcome {
    std::atomic<int> calls{0};
    std::size_t text = 0;
    Result<Embeddings> result = Status(ErrorCode::kInternal, "callback never ran");
  };
  std::vector<Outcome> outcomes(kThreads * kPerThread);
  std::mutex mu;
  std::condition_variable cv;
  int pending = kThreads * kPerThread;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < kPerThread; ++k) {
        Outcome& o = outcomes[static_cast<std::size_t>(t * kPerThread + k)];
        o.text = static_cast<std::size_t>(t * 5 + k * 3) % goldens.size();
        auto done = [&](Result<Embeddings> r) {
          if (o.calls.fetch_add(1) == 0) o.result = std::move(r);
          std::lock_guard lock(mu);
          if (--pending == 0) cv.notify_all();
        };
        if (k % 2 == 0) {
          engine->embed_async({goldens[o.text].text}, {}, done);
        } else {
          engine->embed_tokens_async({ids[o.text]}, {}, done);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(120), [&] { return pending == 0; }));
  }
  for (auto& o : outcomes) {
    EXPECT_EQ(o.calls.load(), 1);
    ASSERT_TRUE(o.result.ok()) << o.result.status().to_string();
    ASSERT_EQ(o.result->data.size(), alone[o.text].size());
    for (std::size_t d = 0; d < o.result->data.size(); ++d) {
      ASSERT_NEAR(o.result->data[d], alone[o.text][d], 1e-6) << "text " << o.text << " dim " << d;
    }
  }
}

// Refusals reach the callback on the calling thread before embed_async returns; a throwing
// callback does not take the engine down; an empty callback is refused and counted.
TEST(Engine, AsyncRefusalsAndBrokenCallbacks) {
  auto engine = load("tiny-jina");
  ASSERT_TRUE(engine);
  const auto caller = std::this_thread::get_id();
  int calls = 0;
  std::thread::id ran_on;
  Status status;
  const auto record = [&](Result<Embeddings> r) {
    ++calls;
    ran_on = std::this_thread::get_id();
    status = r.status();
  };
  engine->embed_async({}, {}, record);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(ran_on, caller);
  EXPECT_EQ(status.code(), ErrorCode::kInvalidArgument);
  engine->embed_async({"fine", std::string("bad \xff byte")}, {}, record);
  EXPECT_EQ(calls, 2);
  EXPECT_NE(status.message().find("input 1"), std::string::npos) << status.message();
  engine->embed_tokens_async({{101, 999999, 102}}, {}, record);
  EXPECT_EQ(calls, 3);
  EXPECT_NE(status.message().find("input 0 token 1"), std::string::npos) << status.message();

  std::promise<void> thrown;
  engine->embed_async({"a callback that throws"}, {}, [&](Result<Embeddings>) {
    thrown.set_value();
    throw std::runtime_error("broken callback");
  });
  ASSERT_EQ(thrown.get_future().wait_for(std::chrono::seconds(60)), std::future_status::ready);
  auto after = engine->embed({"the engine still works"}).get();
  EXPECT_TRUE(after.ok()) << after.status().to_string();

  const auto invalid_before = engine->stats().rejected_invalid;
  engine->embed_async({"nobody listens"}, {}, nullptr);
  EXPECT_EQ(engine->stats().rejected_invalid, invalid_before + 1);
}

}  // namespace
}  // namespace embd
