// Synthetic JinaBERT models: written with the library function and with the tool, then read back
// through WeightSet and load_model_config.
#include "io/synthetic_model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "io/model_config.h"
#include "io/safetensors.h"
#include "io_test_util.h"

namespace embd::io {
namespace {

using testing::read_file;
using testing::TempDir;

const std::filesystem::path kTokenizer =
    std::filesystem::path(EMBD_FIXTURES_DIR) / "models" / "tiny-jina" / "tokenizer.json";

SyntheticModelSpec tiny_spec(DType dtype) {
  SyntheticModelSpec s;
  s.hidden = 32;
  s.layers = 2;
  s.heads = 4;
  s.intermediate = 48;
  s.vocab = 100;
  s.dtype = dtype;
  s.tokenizer = kTokenizer;
  return s;
}

// Every tensor of JINABERT.md §2.1 with the spec's shapes, the stored dtype, a config that
// parses back to the same sizes.
void expect_model(const std::filesystem::path& dir, const SyntheticModelSpec& s) {
  auto cfg = load_model_config(dir);
  ASSERT_TRUE(cfg.ok()) << cfg.status().to_string();
  EXPECT_EQ(cfg->architecture, Architecture::kJinaBert);
  EXPECT_EQ(cfg->variant, JinaVariant::kBase);
  EXPECT_EQ(cfg->hidden_size, s.hidden);
  EXPECT_EQ(cfg->num_hidden_layers, s.layers);
  EXPECT_EQ(cfg->num_attention_heads, s.heads);
  EXPECT_EQ(cfg->intermediate_size, s.intermediate);
  EXPECT_EQ(cfg->vocab_size, s.vocab);
  EXPECT_EQ(cfg->feed_forward, FeedForward::kGeglu);
  auto w = WeightSet::open_dir(dir);
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  const std::int64_t h = s.hidden;
  const std::int64_t i = s.intermediate;
  EXPECT_EQ((*w)->stored_dtype(), s.dtype);
  EXPECT_TRUE((*w)->require("embeddings.word_embeddings.weight", {s.vocab, h}).ok());
  EXPECT_TRUE((*w)->require("embeddings.token_type_embeddings.weight", {2, h}).ok());
  for (std::int64_t l = 0; l < s.layers; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    for (const char* n : {"attention.self.query", "attention.self.key", "attention.self.value",
                          "attention.output.dense"}) {
      EXPECT_TRUE((*w)->require(p + n + ".weight", {h, h}).ok()) << n;
      EXPECT_TRUE((*w)->require(p + n + ".bias", {h}).ok()) << n;
    }
    EXPECT_TRUE((*w)->require(p + "mlp.gated_layers.weight", {2 * i, h}).ok());
    EXPECT_EQ((*w)->find(p + "mlp.gated_layers.bias"), nullptr);
    EXPECT_TRUE((*w)->require(p + "mlp.wo.weight", {h, i}).ok());
    EXPECT_TRUE((*w)->require(p + "mlp.layernorm.weight", {h}).ok());
    EXPECT_TRUE((*w)->require(p + "attention.output.LayerNorm.bias", {h}).ok());
  }
  EXPECT_TRUE((*w)->require("pooler.dense.weight", {h, h}).ok());
  EXPECT_EQ((*w)->all().size(), static_cast<std::size_t>(4 + 15 * s.layers + 2));
  EXPECT_EQ(read_file(dir / "tokenizer.json"), read_file(kTokenizer));
}

// Mean and standard deviation of a tensor, widened to double.
std::pair<double, double> moments(const HostTensor& t) {
  std::vector<float> v(static_cast<std::size_t>(t.numel()));
  convert(t.data, t.dtype, v.data(), DType::kF32, v.size());
  double sum = 0, sq = 0;
  for (float x : v) sum += x;
  const double mean = sum / static_cast<double>(v.size());
  for (float x : v) sq += (x - mean) * (x - mean);
  return {mean, std::sqrt(sq / static_cast<double>(v.size()))};
}

TEST(SyntheticModel, WritesAndReadsBackInEveryDtype) {
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    TempDir dir;
    const SyntheticModelSpec s = tiny_spec(dtype);
    ASSERT_TRUE(write_synthetic_model(dir.path(), s).ok());
    expect_model(dir.path(), s);
  }
}

TEST(SyntheticModel, InitialisationAndDeterminism) {
  TempDir a, b, c;
  SyntheticModelSpec s = tiny_spec(DType::kF32);
  ASSERT_TRUE(write_synthetic_model(a.path(), s).ok());
  ASSERT_TRUE(write_synthetic_model(b.path(), s).ok());
  EXPECT_EQ(read_file(a / "model.safetensors"), read_file(b / "model.safetensors"));
  s.seed = "other";
  ASSERT_TRUE(write_synthetic_model(c.path(), s).ok());
  EXPECT_NE(read_file(a / "model.safetensors"), read_file(c / "model.safetensors"));
  auto w = WeightSet::open_dir(a.path());
  ASSERT_TRUE(w.ok());
  const auto [wm, ws] = moments(*(*w)->find("embeddings.word_embeddings.weight"));  // 3200 values
  EXPECT_NEAR(wm, 0.0, 0.005);
  EXPECT_NEAR(ws, 0.05, 0.005);
  const auto [gm, gs] = moments(*(*w)->find("encoder.layer.0.mlp.gated_layers.weight"));
  EXPECT_NEAR(gm, 0.0, 0.005);
  EXPECT_NEAR(gs, 0.05, 0.005);
  const auto [lm, ls] = moments(*(*w)->find("embeddings.LayerNorm.weight"));  // 32 values
  EXPECT_NEAR(lm, 1.0, 0.06);
  EXPECT_NEAR(ls, 0.1, 0.05);
}

TEST(SyntheticModel, RejectsBadSizes) {
  TempDir dir;
  SyntheticModelSpec s = tiny_spec(DType::kF32);
  s.heads = 5;
  EXPECT_EQ(write_synthetic_model(dir.path(), s).code(), ErrorCode::kInvalidArgument);
  s.heads = 4;
  s.layers = 0;
  EXPECT_EQ(write_synthetic_model(dir.path(), s).code(), ErrorCode::kInvalidArgument);
}

TEST(SyntheticModel, ToolWritesALoadableModel) {
  const std::filesystem::path tool = std::filesystem::path(EMBD_BINARY_DIR) / "bin" / "make_synthetic_model";
  if (!std::filesystem::exists(tool)) GTEST_SKIP() << "build the make_synthetic_model target: " << tool;
  TempDir dir;
  const std::string cmd = tool.string() + " --hidden 32 --layers 2 --heads 4 --intermediate 48" +
                          " --vocab 100 --dtype bf16 --seed t --out " + (dir / "m").string() +
                          " --tokenizer " + kTokenizer.string() + " > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  SyntheticModelSpec s = tiny_spec(DType::kBF16);
  s.seed = "t";
  expect_model(dir / "m", s);
  // The library call with the same spec writes the same bytes.
  ASSERT_TRUE(write_synthetic_model(dir / "lib", s).ok());
  EXPECT_EQ(read_file(dir / "m" / "model.safetensors"), read_file(dir / "lib" / "model.safetensors"));
  EXPECT_NE(std::system((tool.string() + " --dtype int8 --out " + (dir / "x").string() + " 2>/dev/null").c_str()), 0);
}

}  // namespace
}  // namespace embd::io
