// WeightSet: fixture directories, name lookup with and without "bert." / "roberta.", require() errors,
// sharded checkpoints.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "io/safetensors.h"
#include "io_test_util.h"

namespace embd::io {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using testing::write_file;

const std::filesystem::path kModels = std::filesystem::path(EMBD_FIXTURES_DIR) / "models";

std::unique_ptr<WeightSet> open_ok(const std::filesystem::path& dir) {
  auto w = WeightSet::open_dir(dir);
  EXPECT_TRUE(w.ok()) << w.status().to_string();
  return w.ok() ? std::move(w).value() : nullptr;
}

TEST(WeightSet, TinyJinaFixture) {
  auto w = open_ok(kModels / "tiny-jina");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->stored_dtype(), DType::kF32);
  EXPECT_TRUE(w->require("embeddings.word_embeddings.weight", {30528, 64}).ok());
  EXPECT_TRUE(w->require("embeddings.token_type_embeddings.weight", {2, 64}).ok());
  for (int l = 0; l < 2; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    EXPECT_TRUE(w->require(p + "attention.self.query.weight", {64, 64}).ok());
    EXPECT_TRUE(w->require(p + "mlp.gated_layers.weight", {256, 64}).ok());
    EXPECT_TRUE(w->require(p + "mlp.wo.weight", {64, 128}).ok());
    EXPECT_TRUE(w->require(p + "mlp.layernorm.bias", {64}).ok());
  }
  EXPECT_NE(w->find("pooler.dense.weight"), nullptr);
  EXPECT_EQ(w->find("embeddings.position_embeddings.weight"), nullptr);
  // 2 embedding tables + LN, 2 layers of (4 linear + 2 LN + gated + wo + LN), pooler.
  const std::int64_t layer = 4 * (64 * 64 + 64) + 2 * 64 + 256 * 64 + (64 * 128 + 64) + 2 * 64;
  EXPECT_EQ(w->parameter_count(), 30528 * 64 + 2 * 64 + 2 * 64 + 2 * layer + 64 * 64 + 64);
  EXPECT_EQ(w->all().size(), 4u + 2 * 15 + 2);
}

TEST(WeightSet, TinyJina6hIsF16) {
  auto w = open_ok(kModels / "tiny-jina-6h");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->stored_dtype(), DType::kF16);
  EXPECT_TRUE(w->require("encoder.layer.1.mlp.gated_layers.weight", {192, 48}).ok());
}

TEST(WeightSet, TinyBertHasAbsolutePositions) {
  auto w = open_ok(kModels / "tiny-bert");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->stored_dtype(), DType::kF32);
  EXPECT_TRUE(w->require("embeddings.position_embeddings.weight", {512, 64}).ok());
  EXPECT_TRUE(w->require("encoder.layer.0.intermediate.dense.weight", {128, 64}).ok());
  EXPECT_TRUE(w->require("encoder.layer.1.output.dense.weight", {64, 128}).ok());
}

TEST(WeightSet, TinyXlmrHasOffsetPositionRows) {
  auto w = open_ok(kModels / "tiny-xlmr");
  ASSERT_NE(w, nullptr);
  EXPECT_TRUE(w->require("embeddings.position_embeddings.weight", {514, 64}).ok());
  EXPECT_TRUE(w->require("embeddings.token_type_embeddings.weight", {1, 64}).ok());
}

// MPNet has no token-type table, other attention names and the relative-position table.
TEST(WeightSet, TinyMpnetTensors) {
  auto w = open_ok(kModels / "tiny-mpnet");
  ASSERT_NE(w, nullptr);
  EXPECT_TRUE(w->require("encoder.relative_attention_bias.weight", {32, 3}).ok());
  EXPECT_TRUE(w->require("encoder.layer.1.attention.attn.o.weight", {192, 192}).ok());
  EXPECT_TRUE(w->require("encoder.layer.1.attention.LayerNorm.bias", {192}).ok());
  EXPECT_FALSE(w->require("embeddings.token_type_embeddings.weight", {1, 192}).ok());
}

// DistilBERT's layers live under transformer.layer.N with names of their own.
TEST(WeightSet, TinyDistilbertTensors) {
  auto w = open_ok(kModels / "tiny-distilbert");
  ASSERT_NE(w, nullptr);
  EXPECT_TRUE(w->require("transformer.layer.1.attention.q_lin.weight", {96, 96}).ok());
  EXPECT_TRUE(w->require("transformer.layer.1.ffn.lin1.weight", {192, 96}).ok());
  EXPECT_TRUE(w->require("transformer.layer.1.output_layer_norm.bias", {96}).ok());
  EXPECT_TRUE(w->require("embeddings.position_embeddings.weight", {512, 96}).ok());
}

TEST(WeightSet, RequireErrorsNameTensorAndShapes) {
  auto w = open_ok(kModels / "tiny-jina");
  ASSERT_NE(w, nullptr);
  auto missing = w->require("encoder.layer.9.attention.self.query.weight", {64, 64});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kInvalidModel);
  EXPECT_THAT(missing.status().message(),
              HasSubstr("missing tensor 'encoder.layer.9.attention.self.query.weight' (also looked "
                        "for 'bert.encoder.layer.9.attention.self.query.weight', "
                        "'roberta.encoder.layer.9.attention.self.query.weight', "
                        "'mpnet.encoder.layer.9.attention.self.query.weight', "
                        "'distilbert.encoder.layer.9.attention.self.query.weight')"));
  auto wrong = w->require("embeddings.LayerNorm.weight", {65});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), ErrorCode::kInvalidModel);
  EXPECT_THAT(wrong.status().message(), HasSubstr("tensor 'embeddings.LayerNorm.weight'"));
  EXPECT_THAT(wrong.status().message(), HasSubstr("has shape [64]; expected [65]"));
  EXPECT_THAT(wrong.status().message(), HasSubstr("tiny-jina/model.safetensors"));
}

TEST(WeightSet, BertPrefixBothWays) {
  TempDir dir;
  const float v[2] = {1, 2};
  ASSERT_TRUE(write_safetensors(dir / "model.safetensors",
                                {{"bert.embeddings.x", DType::kF32, {2}, v},
                                 {"pooler.y", DType::kF32, {1}, v}})
                  .ok());
  auto w = open_ok(dir.path());
  ASSERT_NE(w, nullptr);
  ASSERT_NE(w->find("embeddings.x"), nullptr);
  EXPECT_EQ(w->find("embeddings.x")->name, "bert.embeddings.x");
  EXPECT_NE(w->find("bert.embeddings.x"), nullptr);
  EXPECT_NE(w->find("bert.pooler.y"), nullptr);  // stored without the prefix
  EXPECT_EQ(w->find("bert.nothing"), nullptr);
  auto r = w->require("bert.nothing", {1});
  EXPECT_THAT(r.status().message(), HasSubstr("(also looked for 'nothing')"));
}

// XLMRobertaForMaskedLM checkpoints (xlm-roberta-base) keep the encoder under "roberta.".
TEST(WeightSet, RobertaPrefix) {
  TempDir dir;
  const float v[2] = {1, 2};
  ASSERT_TRUE(write_safetensors(dir / "model.safetensors",
                                {{"roberta.embeddings.x", DType::kF32, {2}, v},
                                 {"lm_head.bias", DType::kF32, {1}, v}})
                  .ok());
  auto w = open_ok(dir.path());
  ASSERT_NE(w, nullptr);
  ASSERT_NE(w->find("embeddings.x"), nullptr);
  EXPECT_EQ(w->find("embeddings.x")->name, "roberta.embeddings.x");
  EXPECT_NE(w->find("roberta.embeddings.x"), nullptr);
  EXPECT_EQ(w->find("bert.embeddings.x"), nullptr);  // a prefixed name is looked up bare, not re-prefixed
  EXPECT_TRUE(w->require("embeddings.x", {2}).ok());
}

TEST(WeightSet, StoredDtypeCountsElements) {
  TempDir dir;
  const std::vector<std::uint16_t> big(100, 0);
  const float small[4] = {};
  ASSERT_TRUE(write_safetensors(dir / "model.safetensors",
                                {{"f32", DType::kF32, {4}, small}, {"bf16", DType::kBF16, {100}, big.data()}})
                  .ok());
  auto w = open_ok(dir.path());
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->stored_dtype(), DType::kBF16);
  EXPECT_EQ(w->parameter_count(), 104);
}

TEST(WeightSet, NoWeightsIsNotFound) {
  TempDir dir;
  write_file(dir / "pytorch_model.bin", "x");
  auto w = WeightSet::open_dir(dir.path());
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), ErrorCode::kNotFound);
  EXPECT_THAT(w.status().message(), HasSubstr("no model.safetensors"));
  EXPECT_THAT(w.status().message(), HasSubstr("pytorch_model.bin"));
  EXPECT_EQ(WeightSet::open_dir(dir / "missing").status().code(), ErrorCode::kNotFound);
}

// Two shards and an index, as transformers' save_pretrained(max_shard_size=...) writes them.
class Sharded : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(write_safetensors(dir_ / "model-00001-of-00002.safetensors",
                                  {{"embeddings.a", DType::kF32, {2}, a_}, {"encoder.b", DType::kF32, {3}, b_}})
                    .ok());
    ASSERT_TRUE(write_safetensors(dir_ / "model-00002-of-00002.safetensors",
                                  {{"encoder.c", DType::kF32, {1}, a_}})
                    .ok());
  }
  void write_index(const std::string& weight_map) {
    write_file(dir_ / "model.safetensors.index.json",
               R"({"metadata": {"total_size": 24}, "weight_map": )" + weight_map + "}");
  }
  static constexpr const char* kGoodMap =
      R"({"embeddings.a": "model-00001-of-00002.safetensors",)"
      R"( "encoder.b": "model-00001-of-00002.safetensors",)"
      R"( "encoder.c": "model-00002-of-00002.safetensors"})";
  TempDir dir_;
  const float a_[2] = {1, 2};
  const float b_[3] = {3, 4, 5};
};

TEST_F(Sharded, LoadsEveryShard) {
  write_index(kGoodMap);
  auto w = open_ok(dir_.path());
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->all().size(), 3u);
  EXPECT_EQ(w->parameter_count(), 6);
  ASSERT_TRUE(w->require("encoder.c", {1}).ok());
  EXPECT_EQ(static_cast<const float*>(w->find("encoder.b")->data)[2], 5.0f);
}

TEST_F(Sharded, MissingShardFile) {
  std::filesystem::remove(dir_ / "model-00002-of-00002.safetensors");
  write_index(kGoodMap);
  auto w = WeightSet::open_dir(dir_.path());
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), ErrorCode::kInvalidModel);
  EXPECT_THAT(w.status().message(), HasSubstr("shard 'model-00002-of-00002.safetensors'"));
  EXPECT_THAT(w.status().message(), HasSubstr("does not exist"));
}

TEST_F(Sharded, TensorNotInItsShard) {
  write_index(R"({"embeddings.a": "model-00001-of-00002.safetensors",)"
              R"( "encoder.zzz": "model-00002-of-00002.safetensors"})");
  auto w = WeightSet::open_dir(dir_.path());
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(w.status().message(), HasSubstr("tensor 'encoder.zzz' is listed in shard"));
}

TEST_F(Sharded, ShardNamesMustStayInside) {
  for (const char* bad : {"../model-00001-of-00002.safetensors", "/etc/passwd", "a/../../x"}) {
    write_index(std::string(R"({"embeddings.a": ")") + bad + "\"}");
    auto w = WeightSet::open_dir(dir_.path());
    ASSERT_FALSE(w.ok()) << bad;
    EXPECT_THAT(w.status().message(), HasSubstr("not a file inside the model directory")) << bad;
  }
}

TEST_F(Sharded, MalformedIndex) {
  write_file(dir_ / "model.safetensors.index.json", "{\"weight_map\": ");
  EXPECT_THAT(WeightSet::open_dir(dir_.path()).status().message(), HasSubstr("malformed JSON"));
  write_file(dir_ / "model.safetensors.index.json", R"({"metadata": {}})");
  EXPECT_THAT(WeightSet::open_dir(dir_.path()).status().message(), HasSubstr("missing \"weight_map\""));
  write_index(R"({"embeddings.a": 3})");
  EXPECT_THAT(WeightSet::open_dir(dir_.path()).status().message(), HasSubstr("must name a shard file"));
}

TEST_F(Sharded, DuplicateTensorAcrossShards) {
  ASSERT_TRUE(write_safetensors(dir_ / "model-00002-of-00002.safetensors",
                                {{"encoder.b", DType::kF32, {1}, a_}})
                  .ok());
  write_index(R"({"embeddings.a": "model-00001-of-00002.safetensors",)"
              R"( "encoder.b": "model-00002-of-00002.safetensors"})");
  auto w = WeightSet::open_dir(dir_.path());
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(w.status().message(), HasSubstr("tensor 'encoder.b' is in both"));
}

}  // namespace
}  // namespace embd::io
