// ModelConfig: fixture and published configs, sentence-transformers metadata, and an error that
// names the field for every unsupported or malformed value.
#include "io/model_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <tuple>
#include <vector>

#include "io_test_util.h"

namespace embd::io {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;
using testing::read_file;
using testing::TempDir;
using testing::write_file;

const std::filesystem::path kFixtures(EMBD_FIXTURES_DIR);

ModelConfig load_ok(const std::filesystem::path& dir) {
  auto c = load_model_config(dir);
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  return c.ok() ? *c : ModelConfig{};
}

ModelConfig parse_published(const std::string& name) {
  const std::string file = (kFixtures / "configs" / (name + ".config.json")).string();
  auto c = parse_model_config(read_file(file), file);
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  return c.ok() ? *c : ModelConfig{};
}

TEST(ModelConfig, TinyJina) {
  const ModelConfig c = load_ok(kFixtures / "models" / "tiny-jina");
  EXPECT_EQ(c.architecture, Architecture::kJinaBert);
  EXPECT_EQ(c.variant, JinaVariant::kBase);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_attention_heads, 4);
  EXPECT_EQ(c.head_dim(), 16);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.intermediate_size, 128);
  EXPECT_EQ(c.vocab_size, 30528);
  EXPECT_EQ(c.position_embedding, PositionEmbedding::kAlibi);
  EXPECT_EQ(c.feed_forward, FeedForward::kGeglu);
  EXPECT_EQ(c.hidden_act, HiddenAct::kGeluErf);
  EXPECT_EQ(c.pooling, Pooling::kMean);
  EXPECT_FALSE(c.pooling_from_sentence_transformers);
  EXPECT_FALSE(c.normalize);
  EXPECT_EQ(c.max_length, 8192);
  EXPECT_DOUBLE_EQ(c.layer_norm_eps, 1e-12);
  EXPECT_EQ(c.declared_dtype, DType::kF32);
}

TEST(ModelConfig, TinyJina6h) {
  const ModelConfig c = load_ok(kFixtures / "models" / "tiny-jina-6h");
  EXPECT_EQ(c.architecture, Architecture::kJinaBert);
  EXPECT_EQ(c.num_attention_heads, 6);
  EXPECT_EQ(c.hidden_size, 48);
  EXPECT_EQ(c.head_dim(), 8);
  EXPECT_EQ(c.intermediate_size, 96);
  EXPECT_EQ(c.declared_dtype, DType::kF16);
}

TEST(ModelConfig, TinyBertWithSentenceTransformers) {
  const ModelConfig c = load_ok(kFixtures / "models" / "tiny-bert");
  EXPECT_EQ(c.architecture, Architecture::kBert);
  EXPECT_EQ(c.position_embedding, PositionEmbedding::kAbsolute);
  EXPECT_EQ(c.feed_forward, FeedForward::kMlp);
  EXPECT_EQ(c.hidden_act, HiddenAct::kGeluErf);
  EXPECT_EQ(c.pooling, Pooling::kMean);
  EXPECT_TRUE(c.pooling_from_sentence_transformers);
  EXPECT_TRUE(c.normalize);
  EXPECT_EQ(c.max_length, 512);
  EXPECT_EQ(c.vocab_size, 30522);
  EXPECT_EQ(c.declared_dtype, DType::kF32);  // from "dtype", the transformers 5 spelling
  EXPECT_EQ(c.architectures, std::vector<std::string>{"BertModel"});
}

// XLM-RoBERTa runs as BERT whose first token uses position row pad_token_id + 1 = 2, so its
// 514-row table holds 512 tokens.
TEST(ModelConfig, TinyXlmrIsBertWithOffsetPositions) {
  const ModelConfig c = load_ok(kFixtures / "models" / "tiny-xlmr");
  EXPECT_EQ(c.architecture, Architecture::kBert);
  EXPECT_EQ(c.model_type, "xlm-roberta");
  EXPECT_EQ(c.architectures, std::vector<std::string>{"XLMRobertaModel"});
  EXPECT_EQ(c.position_embedding, PositionEmbedding::kAbsolute);
  EXPECT_EQ(c.feed_forward, FeedForward::kMlp);
  EXPECT_EQ(c.hidden_act, HiddenAct::kGeluErf);
  EXPECT_EQ(c.pad_token_id, 1);
  EXPECT_EQ(c.position_offset, 2);
  EXPECT_EQ(c.max_position_embeddings, 514);
  EXPECT_EQ(c.usable_positions(), 512);
  EXPECT_EQ(c.max_length, 512);
  EXPECT_EQ(c.type_vocab_size, 1);
  EXPECT_EQ(c.vocab_size, 1948);
  EXPECT_DOUBLE_EQ(c.layer_norm_eps, 1e-5);
  EXPECT_EQ(c.pooling, Pooling::kMean);
  EXPECT_TRUE(c.pooling_from_sentence_transformers);
  EXPECT_TRUE(c.normalize);
  // Other models keep their table from row 0.
  EXPECT_EQ(load_ok(kFixtures / "models" / "tiny-bert").position_offset, 0);
  EXPECT_EQ(load_ok(kFixtures / "models" / "tiny-jina").position_offset, 0);
}

// RoBERTa likewise: a 130-row table holds 128 tokens; CLS pooling from 1_Pooling, no Normalize.
TEST(ModelConfig, TinyRobertaIsBertWithOffsetPositions) {
  const ModelConfig c = load_ok(kFixtures / "models" / "tiny-roberta");
  EXPECT_EQ(c.architecture, Architecture::kBert);
  EXPECT_EQ(c.model_type, "roberta");
  EXPECT_EQ(c.architectures, std::vector<std::string>{"RobertaModel"});
  EXPECT_EQ(c.position_offset, 2);
  EXPECT_EQ(c.max_length, 128);
  EXPECT_EQ(c.num_attention_heads, 6);
  EXPECT_EQ(c.pooling, Pooling::kCls);
  EXPECT_FALSE(c.normalize);
}

// MPNet: BERT's encoder with offset positions, no token types and 32 relative-position buckets.
TEST(ModelConfig, TinyMpnetIsBertWithRelativeBuckets) {
  const ModelConfig c = load_ok(kFixtures / "models" / "tiny-mpnet");
  EXPECT_EQ(c.architecture, Architecture::kBert);
  EXPECT_EQ(c.model_type, "mpnet");
  EXPECT_EQ(c.architectures, std::vector<std::string>{"MPNetModel"});
  EXPECT_EQ(c.position_embedding, PositionEmbedding::kAbsolute);
  EXPECT_EQ(c.pad_token_id, 1);
  EXPECT_EQ(c.position_offset, 2);
  EXPECT_EQ(c.max_length, 512);
  EXPECT_EQ(c.type_vocab_size, 0);
  EXPECT_EQ(c.relative_attention_num_buckets, 32);
  EXPECT_EQ(c.num_attention_heads, 3);
  EXPECT_EQ(c.head_dim(), 64);
  EXPECT_DOUBLE_EQ(c.layer_norm_eps, 1e-5);
  EXPECT_EQ(c.pooling, Pooling::kMean);
  EXPECT_TRUE(c.normalize);
  // The other families have no buckets.
  EXPECT_EQ(load_ok(kFixtures / "models" / "tiny-xlmr").relative_attention_num_buckets, 0);
  EXPECT_EQ(load_ok(kFixtures / "models" / "tiny-bert").relative_attention_num_buckets, 0);
}

// all-mpnet-base-v2's config.json as published: MPNetForMaskedLM, no relative_attention_num_buckets
// needed (32 is MPNetConfig's default), no pad_token_id needed (1).
TEST(ModelConfig, MpnetDefaultsAndErrors) {
  json j = json::parse(read_file(kFixtures / "models/tiny-mpnet/config.json"));
  j["architectures"] = {"MPNetForMaskedLM"};
  j.erase("relative_attention_num_buckets");
  j.erase("pad_token_id");
  j["type_vocab_size"] = 2;  // not MPNet's: ignored
  auto c = parse_model_config(j.dump(), "mpnet/config.json");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->relative_attention_num_buckets, 32);
  EXPECT_EQ(c->position_offset, 2);
  EXPECT_EQ(c->type_vocab_size, 0);
  j["relative_attention_num_buckets"] = 64;  // more rows than transformers reads: fine
  EXPECT_EQ(parse_model_config(j.dump(), "x")->relative_attention_num_buckets, 64);
  for (const auto& [field, value, says] : std::vector<std::tuple<std::string, json, std::string>>{
           {"relative_attention_num_buckets", 16, "looks up 32 buckets"},
           {"relative_attention_num_buckets", 0, "expected 1.."},
           {"architectures", json::array({"BertModel"}), "model_type mpnet runs MPNet* encoders"},
           {"position_embedding_type", "alibi", "RoBERTa, MPNet and DistilBERT models use absolute"}}) {
    json bad = j;
    bad[field] = value;
    auto r = parse_model_config(bad.dump(), "mpnet/config.json");
    ASSERT_FALSE(r.ok()) << field;
    EXPECT_THAT(r.status().message(), HasSubstr("'" + field + "'"));
    EXPECT_THAT(r.status().message(), HasSubstr(says));
  }
}

// DistilBERT: BERT's encoder under DistilBertConfig's names (dim, n_layers, n_heads, hidden_dim,
// activation), no token types, LayerNorm eps fixed at 1e-12.
TEST(ModelConfig, TinyDistilbertReadsItsOwnNames) {
  const ModelConfig c = load_ok(kFixtures / "models" / "tiny-distilbert");
  EXPECT_EQ(c.architecture, Architecture::kBert);
  EXPECT_EQ(c.model_type, "distilbert");
  EXPECT_EQ(c.hidden_size, 96);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.num_attention_heads, 3);
  EXPECT_EQ(c.intermediate_size, 192);
  EXPECT_EQ(c.hidden_act, HiddenAct::kGeluErf);
  EXPECT_EQ(c.type_vocab_size, 0);
  EXPECT_EQ(c.position_offset, 0);
  EXPECT_EQ(c.max_length, 512);
  EXPECT_DOUBLE_EQ(c.layer_norm_eps, 1e-12);
  EXPECT_EQ(c.pooling, Pooling::kMean);
  EXPECT_FALSE(c.normalize);
}

TEST(ModelConfig, DistilbertErrorsNameItsFields) {
  const json base = json::parse(read_file(kFixtures / "models/tiny-distilbert/config.json"));
  auto parse = [&](const json& fields) {
    json j = base;
    j.update(fields);
    return parse_model_config(j.dump(), "distil/config.json");
  };
  EXPECT_EQ(parse({{"activation", "relu"}})->hidden_act, HiddenAct::kRelu);
  EXPECT_EQ(parse({{"architectures", {"DistilBertForMaskedLM"}}})->architecture, Architecture::kBert);
  EXPECT_DOUBLE_EQ(parse({{"layer_norm_eps", 0.5}})->layer_norm_eps, 1e-12);  // not DistilBERT's: ignored
  for (const auto& [fields, field, says] : std::vector<std::tuple<json, std::string, std::string>>{
           {{{"n_heads", 5}}, "n_heads", "does not divide dim 96"},
           {{{"hidden_dim", 0}}, "hidden_dim", "expected 1.."},
           {{{"activation", "gelu_new"}}, "activation", "gelu_new"},
           {{{"sinusoidal_pos_embds", true}}, "sinusoidal_pos_embds", "learned positions"},
           {{{"architectures", {"BertModel"}}}, "architectures", "model_type distilbert runs DistilBert*"}}) {
    auto r = parse(fields);
    ASSERT_FALSE(r.ok()) << field;
    EXPECT_THAT(r.status().message(), HasSubstr("distil/config.json"));
    EXPECT_THAT(r.status().message(), HasSubstr("'" + field + "'"));
    EXPECT_THAT(r.status().message(), HasSubstr(says));
  }
  json no_dim = base;
  no_dim.erase("dim");
  auto missing = parse_model_config(no_dim.dump(), "distil/config.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("'dim' is missing"));
}

TEST(ModelConfig, PublishedJinaConfigs) {
  const ModelConfig small = parse_published("jina-embeddings-v2-small-en");
  EXPECT_EQ(small.variant, JinaVariant::kBase);
  EXPECT_EQ(small.hidden_size, 512);
  EXPECT_EQ(small.num_hidden_layers, 4);
  EXPECT_EQ(small.num_attention_heads, 8);
  EXPECT_EQ(small.intermediate_size, 2048);
  EXPECT_EQ(small.vocab_size, 30528);
  EXPECT_EQ(small.max_length, 8192);
  const ModelConfig base = parse_published("jina-embeddings-v2-base-en");
  EXPECT_EQ(base.variant, JinaVariant::kBase);
  EXPECT_EQ(base.hidden_size, 768);
  EXPECT_EQ(base.num_hidden_layers, 12);
  EXPECT_EQ(base.num_attention_heads, 12);
  EXPECT_EQ(base.intermediate_size, 3072);
  const ModelConfig code = parse_published("jina-embeddings-v2-base-code");
  EXPECT_EQ(code.architecture, Architecture::kJinaBert);
  EXPECT_EQ(code.variant, JinaVariant::kQkPostNorm);
  EXPECT_EQ(code.vocab_size, 61056);
  EXPECT_EQ(code.declared_dtype, DType::kF16);
  // base-de's _name_or_path names no implementation; its auto_map names the base code.
  const ModelConfig de = parse_published("jina-embeddings-v2-base-de");
  EXPECT_EQ(de.variant, JinaVariant::kBase);
  EXPECT_EQ(de.vocab_size, 61056);
  EXPECT_EQ(variant_name(code.variant), "qk_post_norm");
  EXPECT_EQ(architecture_name(de.architecture), "jina_bert");
}

// A JinaBERT config (tiny-jina's) with one field replaced or removed.
class ConfigField : public ::testing::Test {
 protected:
  void SetUp() override { base_ = json::parse(read_file(kFixtures / "models/tiny-jina/config.json")); }
  Result<ModelConfig> with(const std::string& key, const json& value) const {
    json j = base_;
    if (value.is_discarded()) {
      j.erase(key);
    } else {
      j[key] = value;
    }
    return parse_model_config(j.dump(), "test/config.json");
  }
  // Asserts the result is an error that names the file, the field and (if given) the value.
  static void expect_error(const Result<ModelConfig>& r, const std::string& field,
                           const std::string& value = "") {
    ASSERT_FALSE(r.ok()) << field;
    EXPECT_THAT(r.status().message(), HasSubstr("test/config.json"));
    EXPECT_THAT(r.status().message(), HasSubstr("'" + field + "'"));
    if (!value.empty()) {
      EXPECT_THAT(r.status().message(), HasSubstr(value));
    }
  }
  static json absent() { return json(json::value_t::discarded); }
  json base_;
};

TEST_F(ConfigField, ModelTypeAndArchitectures) {
  expect_error(with("model_type", "deberta-v2"), "model_type", "deberta-v2");
  expect_error(with("model_type", absent()), "model_type");
  expect_error(with("architectures", {"RobertaModel"}), "architectures", "RobertaModel");
  expect_error(with("architectures", "JinaBertModel"), "architectures");
  EXPECT_EQ(with("model_type", "deberta-v2").status().code(), ErrorCode::kUnsupported);
  // A RoBERTa model_type with a JinaBERT class: the class must be of the model_type's family.
  expect_error(with("model_type", "roberta"), "architectures", "JinaBert");
}

TEST_F(ConfigField, JinaFeedForwardAndPooler) {
  expect_error(with("feed_forward_type", "swiglu"), "feed_forward_type", "swiglu");
  expect_error(with("feed_forward_type", absent()), "feed_forward_type", "original");
  auto reglu = with("feed_forward_type", "reglu");
  ASSERT_TRUE(reglu.ok());
  EXPECT_EQ(reglu->feed_forward, FeedForward::kReglu);
  EXPECT_EQ(reglu->hidden_act, HiddenAct::kRelu);
  expect_error(with("emb_pooler", "max"), "emb_pooler", "max");
  EXPECT_EQ(with("emb_pooler", "cls")->pooling, Pooling::kCls);
  expect_error(with("position_embedding_type", "relative_key"), "position_embedding_type", "relative_key");
  expect_error(with("position_embedding_type", "absolute"), "position_embedding_type", "absolute");
}

TEST_F(ConfigField, VariantDetection) {
  json auto_map = base_["auto_map"];
  for (auto& [k, v] : auto_map.items()) {
    std::string s = v.get<std::string>();
    s.replace(s.find("jina-bert-implementation"), 24, "jina-bert-v2-qk-devlin-norm-1e-2");
    v = s;
  }
  EXPECT_EQ(with("auto_map", auto_map)->variant, JinaVariant::kQkNorm);
  json unknown = {{"AutoModel", "jinaai/jina-bert-flash-implementation--modeling_bert.JinaBertModel"}};
  expect_error(with("auto_map", unknown), "auto_map", "jina-bert-flash-implementation");
  // No remote code at all: ALiBi decides, the base block is assumed.
  json j = base_;
  j.erase("auto_map");
  j.erase("_name_or_path");
  auto plain = parse_model_config(j.dump(), "x");
  ASSERT_TRUE(plain.ok()) << plain.status().to_string();
  EXPECT_EQ(plain->architecture, Architecture::kJinaBert);
  EXPECT_EQ(plain->variant, JinaVariant::kBase);
}

TEST_F(ConfigField, Sizes) {
  expect_error(with("hidden_size", 66), "num_attention_heads", "does not divide hidden_size 66");
  expect_error(with("num_hidden_layers", -1), "num_hidden_layers", "-1");
  expect_error(with("num_hidden_layers", 0), "num_hidden_layers", "0");
  expect_error(with("hidden_size", "64"), "hidden_size", "must be an integer");
  expect_error(with("hidden_size", 64.5), "hidden_size", "must be an integer");
  expect_error(with("hidden_size", absent()), "hidden_size", "missing");
  expect_error(with("vocab_size", 1ll << 40), "vocab_size");
  expect_error(with("intermediate_size", json::parse("18446744073709551615")), "intermediate_size");
  expect_error(with("pad_token_id", 99999), "pad_token_id", "outside the vocabulary");
  expect_error(with("layer_norm_eps", -1.0), "layer_norm_eps");
  expect_error(with("layer_norm_eps", "small"), "layer_norm_eps");
  expect_error(with("model_max_length", 0), "model_max_length");
  EXPECT_EQ(with("model_max_length", 1024)->max_length, 1024);
  EXPECT_TRUE(with("pad_token_id", nullptr).ok());
}

TEST_F(ConfigField, Dtype) {
  EXPECT_EQ(with("torch_dtype", "bfloat16")->declared_dtype, DType::kBF16);
  EXPECT_EQ(with("torch_dtype", "auto")->declared_dtype, std::nullopt);
  EXPECT_EQ(with("torch_dtype", absent())->declared_dtype, std::nullopt);
  expect_error(with("torch_dtype", 16), "torch_dtype");
}

TEST(ModelConfigBert, HiddenActIsNeverSubstituted) {
  const std::string text = read_file(kFixtures / "models/tiny-bert/config.json");
  for (const char* act : {"gelu_new", "gelu_pytorch_tanh", "silu"}) {
    json j = json::parse(text);
    j["hidden_act"] = act;
    auto r = parse_model_config(j.dump(), "bert/config.json");
    ASSERT_FALSE(r.ok()) << act;
    EXPECT_THAT(r.status().message(), HasSubstr("'hidden_act'"));
    EXPECT_THAT(r.status().message(), HasSubstr(act));
  }
  json j = json::parse(text);
  j["hidden_act"] = "relu";
  EXPECT_EQ(parse_model_config(j.dump(), "x")->hidden_act, HiddenAct::kRelu);
  j.erase("position_embedding_type");
  j["architectures"] = {"BertForMaskedLM"};
  EXPECT_EQ(parse_model_config(j.dump(), "x")->architecture, Architecture::kBert);
}

// tiny-xlmr's config.json with fields replaced.
Result<ModelConfig> xlmr_with(const json& fields) {
  json j = json::parse(read_file(kFixtures / "models/tiny-xlmr/config.json"));
  j.update(fields);
  return parse_model_config(j.dump(), "xlmr/config.json");
}

void expect_xlmr_error(const Result<ModelConfig>& r, const std::string& field, const std::string& value) {
  ASSERT_FALSE(r.ok()) << field;
  EXPECT_THAT(r.status().message(), HasSubstr("xlmr/config.json"));
  EXPECT_THAT(r.status().message(), HasSubstr("'" + field + "'"));
  EXPECT_THAT(r.status().message(), HasSubstr(value));
}

TEST(ModelConfigXlmr, OffsetFollowsPadTokenId) {
  auto pad0 = xlmr_with({{"pad_token_id", 0}});
  ASSERT_TRUE(pad0.ok()) << pad0.status().to_string();
  EXPECT_EQ(pad0->position_offset, 1);
  EXPECT_EQ(pad0->max_length, 513);
  // Absent: XLMRobertaConfig's default padding id, 1.
  json j = json::parse(read_file(kFixtures / "models/tiny-xlmr/config.json"));
  j.erase("pad_token_id");
  auto absent = parse_model_config(j.dump(), "x");
  ASSERT_TRUE(absent.ok()) << absent.status().to_string();
  EXPECT_EQ(absent->position_offset, 2);
  EXPECT_EQ(absent->max_length, 512);
  // model_max_length and sentence-transformers still only shorten it.
  EXPECT_EQ(xlmr_with({{"model_max_length", 8192}})->max_length, 512);
  EXPECT_EQ(xlmr_with({{"model_max_length", 256}})->max_length, 256);
  auto masked_lm = xlmr_with({{"architectures", {"XLMRobertaForMaskedLM"}}});
  ASSERT_TRUE(masked_lm.ok()) << masked_lm.status().to_string();
  EXPECT_EQ(masked_lm->architecture, Architecture::kBert);
}

TEST(ModelConfigXlmr, ErrorsNameTheField) {
  // The first usable row would be past the table: pad_token_id is named, with both sizes.
  expect_xlmr_error(xlmr_with({{"pad_token_id", 513}}), "pad_token_id", "513");
  auto none_left = xlmr_with({{"pad_token_id", 600}});
  expect_xlmr_error(none_left, "pad_token_id", "row pad_token_id + 1 = 601");
  EXPECT_THAT(none_left.status().message(), HasSubstr("514 rows of max_position_embeddings"));
  EXPECT_EQ(none_left.status().code(), ErrorCode::kInvalidModel);
  auto one_left = xlmr_with({{"pad_token_id", 512}});
  ASSERT_TRUE(one_left.ok()) << one_left.status().to_string();
  EXPECT_EQ(one_left->max_length, 1);
  // Classes of another family, and XLM-RoBERTa-XL (pre-LayerNorm), are refused by name.
  expect_xlmr_error(xlmr_with({{"architectures", {"BertModel"}}}), "architectures", "BertModel");
  expect_xlmr_error(xlmr_with({{"architectures", {"XLMRobertaXLModel"}}}), "architectures",
                    "XLMRobertaXLModel");
  expect_xlmr_error(xlmr_with({{"model_type", "bert"}}), "architectures", "XLMRobertaModel");
  // RoBERTa: the same offset, its own classes.
  auto roberta = xlmr_with({{"model_type", "roberta"}, {"architectures", {"RobertaModel"}}});
  ASSERT_TRUE(roberta.ok()) << roberta.status().to_string();
  EXPECT_EQ(roberta->position_offset, 2);
  EXPECT_EQ(roberta->max_length, 512);
  expect_xlmr_error(xlmr_with({{"model_type", "roberta"}}), "architectures", "XLMRobertaModel");
  expect_xlmr_error(xlmr_with({{"model_type", "roberta"}, {"architectures", {"RobertaPreLayerNormModel"}}}),
                    "architectures", "RobertaPreLayerNormModel");
  // jina-embeddings-v3 is an xlm-roberta model_type with rotary positions.
  expect_xlmr_error(xlmr_with({{"position_embedding_type", "rotary"}}), "position_embedding_type", "rotary");
  expect_xlmr_error(xlmr_with({{"position_embedding_type", "alibi"}}), "position_embedding_type", "alibi");
  EXPECT_TRUE(xlmr_with({{"position_embedding_type", "absolute"}}).ok());
  expect_xlmr_error(xlmr_with({{"hidden_act", "gelu_new"}}), "hidden_act", "gelu_new");
  expect_xlmr_error(xlmr_with({{"model_type", "xlm-roberta-xl"}}), "model_type", "xlm-roberta-xl");
}

TEST(ModelConfigBert, MalformedJson) {
  for (const char* text : {"", "{", "[]", "{\"model_type\": \"bert\",}", "\xff\xfe"}) {
    auto r = parse_model_config(text, "bad/config.json");
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidModel);
    EXPECT_THAT(r.status().message(), HasSubstr("bad/config.json"));
  }
  EXPECT_EQ(load_model_config("/nonexistent/dir").status().code(), ErrorCode::kNotFound);
}

// tiny-bert copied to a temp dir, with one sentence-transformers file rewritten.
class SentenceTransformers : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto src = kFixtures / "models" / "tiny-bert";
    for (const char* f : {"config.json", "modules.json", "sentence_bert_config.json"}) {
      std::filesystem::copy_file(src / f, dir_ / f);
    }
    std::filesystem::create_directories(dir_ / "1_Pooling");
    std::filesystem::copy_file(src / "1_Pooling" / "config.json", dir_ / "1_Pooling" / "config.json");
  }
  void set_pooling(const json& fields) {
    json j = json::parse(read_file(dir_ / "1_Pooling" / "config.json"));
    j.update(fields);
    write_file(dir_ / "1_Pooling" / "config.json", j.dump());
  }
  Status load_error() {
    auto r = load_model_config(dir_.path());
    EXPECT_FALSE(r.ok());
    return r.ok() ? Status() : r.status();
  }
  TempDir dir_;
};

TEST_F(SentenceTransformers, ClsPoolingAndShorterMaxSeqLength) {
  set_pooling({{"pooling_mode_mean_tokens", false}, {"pooling_mode_cls_token", true}});
  write_file(dir_ / "sentence_bert_config.json", R"({"max_seq_length": 128, "do_lower_case": false})");
  write_file(dir_ / "modules.json",
             R"([{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},)"
             R"({"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"}])");
  const ModelConfig c = load_ok(dir_.path());
  EXPECT_EQ(c.pooling, Pooling::kCls);
  EXPECT_EQ(c.max_length, 128);
  EXPECT_FALSE(c.normalize);
}

TEST_F(SentenceTransformers, UnsupportedPoolingModesAreNamed) {
  set_pooling({{"pooling_mode_mean_tokens", false}, {"pooling_mode_max_tokens", true}});
  EXPECT_THAT(load_error().message(), HasSubstr("'pooling_mode_max_tokens'"));
  set_pooling({{"pooling_mode_max_tokens", false}, {"pooling_mode_mean_sqrt_len_tokens", true}});
  EXPECT_THAT(load_error().message(), HasSubstr("'pooling_mode_mean_sqrt_len_tokens'"));
  set_pooling({{"pooling_mode_mean_sqrt_len_tokens", false}, {"pooling_mode_mean_tokens", true},
               {"pooling_mode_cls_token", true}});
  EXPECT_THAT(load_error().message(), HasSubstr("second pooling mode"));
  set_pooling({{"pooling_mode_cls_token", false}, {"word_embedding_dimension", 32}});
  EXPECT_THAT(load_error().message(), HasSubstr("'word_embedding_dimension'"));
  set_pooling({{"word_embedding_dimension", 64}, {"pooling_mode_mean_tokens", "yes"}});
  EXPECT_THAT(load_error().message(), HasSubstr("'pooling_mode_mean_tokens' must be true or false"));
}

TEST_F(SentenceTransformers, ModulesJson) {
  write_file(dir_ / "modules.json",
             R"([{"path":"2_Dense","type":"sentence_transformers.models.Dense"}])");
  EXPECT_THAT(load_error().message(), HasSubstr("sentence_transformers.models.Dense"));
  write_file(dir_ / "modules.json", R"([{"path":"../x","type":"sentence_transformers.models.Pooling"}])");
  EXPECT_THAT(load_error().message(), HasSubstr("not a folder inside the model directory"));
  write_file(dir_ / "modules.json", R"([{"path":"3_P","type":"sentence_transformers.models.Pooling"}])");
  EXPECT_THAT(load_error().message(), HasSubstr("does not exist"));
  write_file(dir_ / "modules.json", R"({"not": "an array"})");
  EXPECT_THAT(load_error().message(), HasSubstr("modules.json: top level must be a JSON array"));
  write_file(dir_ / "modules.json", R"([{"path": 3}])");
  EXPECT_THAT(load_error().message(), HasSubstr("'modules[0]'"));
}

TEST_F(SentenceTransformers, OtherFiles) {
  write_file(dir_ / "sentence_bert_config.json", R"({"max_seq_length": -5})");
  EXPECT_THAT(load_error().message(), HasSubstr("'max_seq_length'"));
  write_file(dir_ / "sentence_bert_config.json", R"({"max_seq_length": 4096})");
  EXPECT_EQ(load_ok(dir_.path()).max_length, 512);  // max_position_embeddings still bounds it
  write_file(dir_ / "config_sentence_transformers.json", R"({"prompts": {"query": 1}})");
  EXPECT_THAT(load_error().message(), HasSubstr("'prompts.query'"));
  write_file(dir_ / "config_sentence_transformers.json", "{oops");
  EXPECT_THAT(load_error().message(), HasSubstr("config_sentence_transformers.json: malformed JSON"));
  write_file(dir_ / "config_sentence_transformers.json",
             R"({"prompts": {"query": "q: "}, "similarity_fn_name": "cosine"})");
  EXPECT_TRUE(load_model_config(dir_.path()).ok());
}

}  // namespace
}  // namespace embd::io
