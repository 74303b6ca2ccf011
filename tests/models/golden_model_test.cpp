// The encoders against the float64 goldens, on every backend and dtype, from the goldens' token
// ids (the tokenizer has its own golden test): per text relative L2 and max abs error of the raw
// mean-pooled embedding, and batch invariance.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <tuple>

#include "backends/registry.h"
#include "common/golden.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "runtime/model_runner.h"

namespace embd {
namespace {

using testing::GoldenText;

runtime::PackedBatch pack(const std::vector<const GoldenText*>& texts) {
  runtime::PackedBatch b;
  b.cu_seqlens.push_back(0);
  for (const auto* t : texts) {
    b.ids.insert(b.ids.end(), t->ids.begin(), t->ids.end());
    b.cu_seqlens.push_back(static_cast<std::int32_t>(b.ids.size()));
    b.max_seqlen = std::max<std::int32_t>(b.max_seqlen, static_cast<std::int32_t>(t->ids.size()));
  }
  return b;
}

using Param = std::tuple<std::string /*device*/, std::string /*model*/, std::string /*dtype*/>;

class GoldenModel : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    const auto& [device, model, dtype] = GetParam();
    if (device != "cpu" && backend::cuda_device_count() == 0) {
      GTEST_SKIP() << "no CUDA GPU visible: " << device << " golden test not run";
    }
    auto config = io::load_model_config(testing::model_dir(model));
    ASSERT_TRUE(config.ok()) << config.status().to_string();
    config_ = *config;
    auto weights = io::WeightSet::open_dir(testing::model_dir(model));
    ASSERT_TRUE(weights.ok()) << weights.status().to_string();
    weights_ = std::move(weights).value();
    auto backends = backend::create_backends(device, {});
    ASSERT_TRUE(backends.ok()) << backends.status().to_string();
    auto runner = runtime::ModelRunner::create(std::move(backends.value().front()), config_,
                                               *weights_, parse_dtype(dtype).value());
    ASSERT_TRUE(runner.ok()) << runner.status().to_string();
    runner_ = std::move(runner).value();
    goldens_ = testing::load_goldens(model);
    ASSERT_EQ(goldens_.size(), 40u);
  }

  io::ModelConfig config_;
  std::unique_ptr<io::WeightSet> weights_;
  std::unique_ptr<runtime::ModelRunner> runner_;
  std::vector<GoldenText> goldens_;
};

TEST_P(GoldenModel, EveryTextWithinToleranceOfFloat64) {
  const auto& [device, model, dtype] = GetParam();
  const auto tol = testing::tiny_model_tolerance(dtype);
  std::vector<const GoldenText*> all;
  for (const auto& g : goldens_) all.push_back(&g);
  std::vector<float> pooled;
  Status s = runner_->run(pack(all), pooled);
  ASSERT_TRUE(s.ok()) << s.to_string();
  const std::size_t h = runner_->hidden_size();
  testing::ErrorStats worst;
  for (std::size_t i = 0; i < goldens_.size(); ++i) {
    const auto e = testing::compare(pooled.data() + i * h, goldens_[i].embedding);
    EXPECT_LE(e.rel_l2, tol.rel_l2) << goldens_[i].id;
    EXPECT_LE(e.max_abs, tol.max_abs) << goldens_[i].id;
    worst.rel_l2 = std::max(worst.rel_l2, e.rel_l2);
    worst.max_abs = std::max(worst.max_abs, e.max_abs);
  }
  const auto torch = testing::pytorch_reference_error(model, dtype);
  std::printf("[golden] %-6s %-13s %-4s embd: max rel L2 %.2e, max abs %.2e | PyTorch %s: %.1e / %.1e\n",
              device.c_str(), model.c_str(), dtype.c_str(), worst.rel_l2, worst.max_abs,
              dtype == "f32" ? "CPU f32" : "H100", torch.rel_l2, torch.max_abs);
}

// A text alone and the same text inside a batch of mixed lengths give the same vector.
TEST_P(GoldenModel, BatchInvariance) {
  const auto& [device, model, dtype] = GetParam();
  std::vector<const GoldenText*> all;
  for (const auto& g : goldens_) all.push_back(&g);
  std::vector<float> batched, alone;
  ASSERT_TRUE(runner_->run(pack(all), batched).ok());
  const std::size_t h = runner_->hidden_size();
  const double tol = dtype == "f32" ? 1e-6 : (dtype == "f16" ? 2e-3 : 2e-2);
  for (std::size_t i : {0u, 1u, 7u, 20u, 39u}) {
    ASSERT_TRUE(runner_->run(pack({all[i]}), alone).ok());
    for (std::size_t k = 0; k < h; ++k) {
      ASSERT_NEAR(alone[k], batched[i * h + k], tol) << goldens_[i].id << " dim " << k;
    }
  }
}

// The encoder's own bound, behind the engine's: XLM-RoBERTa's first token uses row
// pad_token_id + 1, so 512 tokens fill tiny-xlmr's 514-row table and 513 are refused by name.
TEST(GoldenModelBounds, XlmRobertaUsesRowsFromPadTokenIdPlusOne) {
  const std::string dir = testing::model_dir("tiny-xlmr");
  auto config = io::load_model_config(dir);
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  auto weights = io::WeightSet::open_dir(dir);
  ASSERT_TRUE(weights.ok()) << weights.status().to_string();
  auto backends = backend::create_backends("cpu", {});
  ASSERT_TRUE(backends.ok()) << backends.status().to_string();
  auto runner =
      runtime::ModelRunner::create(std::move(backends.value().front()), *config, **weights, DType::kF32);
  ASSERT_TRUE(runner.ok()) << runner.status().to_string();
  GoldenText text;
  text.ids.assign(512, 5);
  std::vector<float> pooled;
  EXPECT_TRUE((*runner)->run(pack({&text}), pooled).ok());
  text.ids.push_back(5);
  const Status s = (*runner)->run(pack({&text}), pooled);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::kInputTooLong);
  EXPECT_NE(s.message().find("513 tokens exceeds the 512 position embeddings "
                             "(max_position_embeddings 514 less the first 2, pad_token_id + 1)"),
            std::string::npos)
      << s.message();
}

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  std::string s = std::get<0>(info.param) + "_" + std::get<1>(info.param) + "_" + std::get<2>(info.param);
  std::replace_if(s.begin(), s.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
  return s;
}

INSTANTIATE_TEST_SUITE_P(Models, GoldenModel,
                         ::testing::Combine(::testing::Values("cpu", "cuda:0"),
                                            ::testing::Values("tiny-jina", "tiny-jina-6h", "tiny-bert",
                                                              "tiny-xlmr", "tiny-roberta", "tiny-mpnet",
                                                              "tiny-distilbert"),
                                            ::testing::Values("f32", "f16", "bf16")),
                         param_name);

}  // namespace
}  // namespace embd
