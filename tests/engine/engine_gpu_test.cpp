// The public API on a CUDA GPU: goldens in every dtype, 8192-token inputs, and many caller
// threads sharing one GPU. Skips (never passes) where no GPU is visible.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <thread>

#include "common/golden.h"
#include "embd/embd.hpp"
#include "io/synthetic_model.h"

namespace embd {
namespace {

class EngineGpu : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto probe = Engine::load(testing::model_dir("tiny-jina"), {.dtype = "f32", .device = "cuda:0"});
    if (!probe.ok() && (probe.status().code() == ErrorCode::kUnsupported)) {
      GTEST_SKIP() << "no CUDA GPU: " << probe.status().message();
    }
    ASSERT_TRUE(probe.ok()) << probe.status().to_string();
  }
};

TEST_P(EngineGpu, GoldensInEveryModel) {
  const std::string dtype = GetParam();
  const auto tol = testing::tiny_model_tolerance(dtype);
  for (const std::string model : {"tiny-jina", "tiny-jina-6h", "tiny-bert", "tiny-xlmr", "tiny-roberta",
                                    "tiny-mpnet", "tiny-distilbert"}) {
    auto engine = Engine::load(testing::model_dir(model), {.dtype = dtype, .device = "cuda:0"});
    ASSERT_TRUE(engine.ok()) << engine.status().to_string();
    const auto goldens = testing::load_goldens(model);
    std::vector<std::string> texts;
    for (const auto& g : goldens) texts.push_back(g.text);
    EmbedOptions raw;
    raw.normalize = false;
    raw.truncate = true;
    auto r = (*engine)->embed(texts, raw).get();
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    testing::ErrorStats worst;
    for (std::size_t i = 0; i < goldens.size(); ++i) {
      const auto e = testing::compare(r->row(i).data(), goldens[i].embedding);
      EXPECT_LE(e.rel_l2, tol.rel_l2) << model << " " << goldens[i].id;
      EXPECT_LE(e.max_abs, tol.max_abs) << model << " " << goldens[i].id;
      worst.rel_l2 = std::max(worst.rel_l2, e.rel_l2);
      worst.max_abs = std::max(worst.max_abs, e.max_abs);
    }
    const auto torch = testing::pytorch_reference_error(model, dtype);
    std::printf("[golden-gpu] %-13s %-4s embd: max rel L2 %.2e, max abs %.2e | PyTorch: %.1e / %.1e\n",
                model.c_str(), dtype.c_str(), worst.rel_l2, worst.max_abs, torch.rel_l2, torch.max_abs);
  }
}

// An 8192-token input runs (no H x L x L buffer) and agrees with the CPU.
TEST_P(EngineGpu, LongestInputMatchesCpu) {
  const std::string dtype = GetParam();
  std::string text;
  for (int i = 0; i < 9000; ++i) text += (i % 7 == 0) ? "license " : "the ";
  EmbedOptions o;
  o.truncate = true;
  auto gpu = Engine::load(testing::model_dir("tiny-jina"), {.dtype = dtype, .device = "cuda:0"});
  auto cpu = Engine::load(testing::model_dir("tiny-jina"), {.dtype = "f32", .device = "cpu"});
  ASSERT_TRUE(gpu.ok() && cpu.ok());
  auto a = (*gpu)->embed({text}, o).get();
  auto b = (*cpu)->embed({text}, o).get();
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->token_counts[0], 8192u);
  std::vector<double> ref(b->data.begin(), b->data.end());
  const auto e = testing::compare(a->data.data(), ref);
  // F32 rounding grows with length: 5e-5 is the fixtures README's F32 bound for long inputs on
  // wider models (1e-5 is for the tiny models' <= 3000-token goldens).
  const double tol = dtype == "f32" ? 5e-5 : (dtype == "f16" ? 5e-3 : 3e-2);
  EXPECT_LE(e.rel_l2, tol);
  std::printf("[8192-gpu] %s rel L2 vs CPU f32 %.2e\n", dtype.c_str(), e.rel_l2);
}

// jina-embeddings-v2-small-en's exact shape (synthetic weights, io/synthetic_model.h): hidden 512,
// so on Hopper the F16/BF16 batches run both fused kernels (the gated MLP projection and the output
// projection + LayerNorm, the latter from 1024 tokens a batch). The fixtures' models are too narrow
// for the second. Agrees with the CPU in F32.
TEST_P(EngineGpu, PublishedShapeMatchesCpu) {
  const std::string dtype = GetParam();
  const auto dir = std::filesystem::temp_directory_path() / ("embd-small-en-" + std::to_string(::getpid()));
  io::SyntheticModelSpec spec;
  spec.tokenizer = std::filesystem::path(testing::model_dir("tiny-jina")) / "tokenizer.json";
  const Status written = io::write_synthetic_model(dir, spec);
  ASSERT_TRUE(written.ok()) << written.to_string();
  // 16 texts of 40 to 400 words: one batch of about 3000 tokens, and each text's rows.
  std::vector<std::string> texts;
  for (int t = 0; t < 16; ++t) {
    std::string text;
    for (int w = 0; w < 40 + 24 * t; ++w) text += (w % (3 + t % 5) == 0) ? "license " : "the ";
    texts.push_back(text);
  }
  auto gpu = Engine::load(dir.string(), {.dtype = dtype, .device = "cuda:0"});
  auto cpu = Engine::load(dir.string(), {.dtype = "f32", .device = "cpu"});
  ASSERT_TRUE(gpu.ok()) << gpu.status().to_string();
  ASSERT_TRUE(cpu.ok()) << cpu.status().to_string();
  auto a = (*gpu)->embed(texts).get();
  auto b = (*cpu)->embed(texts).get();
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  double worst = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    std::vector<double> ref(b->row(i).begin(), b->row(i).end());
    worst = std::max(worst, testing::compare(a->row(i).data(), ref).rel_l2);
  }
  const double tol = dtype == "f32" ? 5e-5 : (dtype == "f16" ? 5e-3 : 3e-2);
  EXPECT_LE(worst, tol);
  std::printf("[small-en-gpu] %s max rel L2 vs CPU f32 %.2e\n", dtype.c_str(), worst);
}

// 32 caller threads share the GPU; each result equals the text embedded alone.
// 32 threads x 20 requests on `device` give the vectors each text gets alone on cuda:0 (without a
// query lane, one batch at a time). With `priorities`, the threads rotate through query,
// interactive and batch priority, so the query lanes run some of the requests beside the other
// executors. The engine under test runs two batches at once per GPU (the default).
void expect_concurrent_matches_alone(const std::string& device, const std::string& dtype,
                                     bool priorities = false) {
  LoadOptions plain{.dtype = dtype, .device = "cuda:0"};
  plain.query_lane = false;
  plain.concurrent_batches = false;
  auto reference = Engine::load(testing::model_dir("tiny-jina"), plain);
  auto engine = Engine::load(testing::model_dir("tiny-jina"), {.dtype = dtype, .device = device});
  ASSERT_TRUE(reference.ok() && engine.ok());
  EXPECT_EQ((*reference)->info().concurrent_batches, 1u);
  EXPECT_EQ((*engine)->info().concurrent_batches, 2u);
  const auto goldens = testing::load_goldens("tiny-jina");
  std::vector<std::vector<float>> alone(goldens.size());
  for (std::size_t i = 0; i < goldens.size(); ++i) {
    auto r = (*reference)->embed({goldens[i].text}).get();
    ASSERT_TRUE(r.ok());
    alone[i] = r->data;
  }
  const double tol = dtype == "f32" ? 1e-5 : (dtype == "f16" ? 2e-3 : 2e-2);
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 32; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < 20; ++k) {
        const std::size_t i = static_cast<std::size_t>(t * 13 + k * 5) % goldens.size();
        EmbedOptions o;
        if (priorities) o.priority = static_cast<Priority>((t + k) % 3);
        auto r = (*engine)->embed({goldens[i].text}, o).get();
        if (!r.ok()) { ++bad; continue; }
        for (std::size_t d = 0; d < r->dim; ++d) {
          if (std::abs(r->data[d] - alone[i][d]) > tol) { ++bad; break; }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST_P(EngineGpu, ConcurrentCallersMatchSequential) { expect_concurrent_matches_alone("cuda:0", GetParam()); }

// The query lane (on by default) and the GPU's other executor run at once on one GPU.
TEST_P(EngineGpu, QueryLaneBesideBulkWorkMatchesSequential) {
  expect_concurrent_matches_alone("cuda:0", GetParam(), /*priorities=*/true);
}

// How many GPUs `--device cuda` finds (each test that needs two skips with this count).
std::size_t visible_gpus() {
  auto engine = Engine::load(testing::model_dir("tiny-jina"), {.dtype = "f32", .device = "cuda"});
  return engine.ok() ? (*engine)->info().devices.size() : 0;
}

// --device cuda: one executor per visible GPU, all pulling from one queue.
TEST_P(EngineGpu, EveryGpuSharesTheQueue) {
  auto engine = Engine::load(testing::model_dir("tiny-jina"), {.dtype = GetParam(), .device = "cuda"});
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  const auto& devices = (*engine)->info().devices;
  if (devices.size() < 2) GTEST_SKIP() << "needs 2 GPUs, " << devices.size() << " visible";
  for (std::size_t i = 0; i < devices.size(); ++i) EXPECT_EQ(devices[i], "cuda:" + std::to_string(i));
  engine->reset();
  expect_concurrent_matches_alone("cuda", GetParam());
}

// Every GPU's query lane and its other executors at once, all fed from one queue.
TEST_P(EngineGpu, QueryLanesOnEveryGpuMatchSequential) {
  if (const auto n = visible_gpus(); n < 2) GTEST_SKIP() << "needs 2 GPUs, " << n << " visible";
  expect_concurrent_matches_alone("cuda", GetParam(), /*priorities=*/true);
}

// One request of 600 texts is cut into batches that land on different GPUs; its rows come back
// in request order and equal one GPU's.
TEST_P(EngineGpu, LargeRequestOverEveryGpuMatchesOneGpu) {
  if (const auto n = visible_gpus(); n < 2) GTEST_SKIP() << "needs 2 GPUs, " << n << " visible";
  const std::string dtype = GetParam();
  auto one = Engine::load(testing::model_dir("tiny-jina"), {.dtype = dtype, .device = "cuda:0"});
  auto every = Engine::load(testing::model_dir("tiny-jina"), {.dtype = dtype, .device = "cuda", .max_batch_tokens = 2048});
  ASSERT_TRUE(one.ok() && every.ok());
  std::vector<std::string> texts;
  for (int t = 0; t < 600; ++t) {
    std::string text = "text " + std::to_string(t);
    for (int w = 0; w < 5 + (t * 37) % 120; ++w) text += (w % (2 + t % 7) == 0) ? " license" : " the";
    texts.push_back(text);
  }
  auto a = (*every)->embed(texts).get();
  auto b = (*one)->embed(texts).get();
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  ASSERT_EQ(a->rows, texts.size());
  const double tol = dtype == "f32" ? 1e-5 : (dtype == "f16" ? 2e-3 : 2e-2);
  double worst = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(a->token_counts[i], b->token_counts[i]) << "text " << i;
    for (std::size_t d = 0; d < a->dim; ++d) worst = std::max<double>(worst, std::abs(a->row(i)[d] - b->row(i)[d]));
  }
  EXPECT_LE(worst, tol);
  std::printf("[every-gpu] %s 600 texts over %zu GPUs, max abs difference to cuda:0 %.2e\n", dtype.c_str(),
              (*every)->info().devices.size(), worst);
}

// cuda:N names one GPU: the last one gives the vectors cuda:0 gives.
TEST_P(EngineGpu, LastGpuByIndexMatchesTheFirst) {
  const auto n = visible_gpus();
  if (n < 2) GTEST_SKIP() << "needs 2 GPUs, " << n << " visible";
  const std::string last = "cuda:" + std::to_string(n - 1);
  auto first = Engine::load(testing::model_dir("tiny-jina"), {.dtype = GetParam(), .device = "cuda:0"});
  auto other = Engine::load(testing::model_dir("tiny-jina"), {.dtype = GetParam(), .device = last});
  ASSERT_TRUE(first.ok() && other.ok());
  ASSERT_EQ((*other)->info().devices, std::vector<std::string>{last});
  const auto goldens = testing::load_goldens("tiny-jina");
  std::vector<std::string> texts;
  for (const auto& g : goldens) texts.push_back(g.text);
  auto a = (*other)->embed(texts).get();
  auto b = (*first)->embed(texts).get();
  ASSERT_TRUE(a.ok() && b.ok());
  // The same kernels on the same card model: the same bits, unless the cards differ.
  double worst = 0;
  for (std::size_t i = 0; i < a->data.size(); ++i) worst = std::max<double>(worst, std::abs(a->data[i] - b->data[i]));
  EXPECT_LE(worst, GetParam() == "f32" ? 1e-5 : 2e-2);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, EngineGpu, ::testing::Values("f32", "f16", "bf16"));

}  // namespace
}  // namespace embd
