// Byte-level BPE: parity with Hugging Face `tokenizers` 0.23.2 on the fixtures that
// tests/fixtures/make_bpe_fixtures.py made (ids and byte offsets of 575 texts each), GPT-2's
// split pattern case by case, batches cut into pieces, and the load errors.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <random>

#include "tokenizer/byte_level.h"
#include "tokenizer/golden_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_text.h"

namespace embd::tokenizer {
namespace {

using testing::fixtures_dir;

std::vector<testing::OffsetGolden> read_bpe_goldens(const std::string& name) {
  return testing::read_offset_goldens("bpe-" + name);
}

std::unique_ptr<Tokenizer> load(const std::string& dir) { return testing::load_fixture_tokenizer(dir); }

void expect_parity(const std::string& dir, const std::string& golden) {
  testing::expect_golden_parity(dir, "bpe-" + golden, 575);
}

TEST(BpeGolden, RobertaPipelineMatchesHuggingFace) { expect_parity("roberta-bpe", "roberta"); }

TEST(BpeGolden, LowercasePrefixSpaceIgnoreMergesMatchesHuggingFace) {
  expect_parity("bpe-prefix-lower", "prefix-lower");
}

// Byte-level BPE loses nothing: without a normaliser, the tokens' bytes spell the text.
TEST(Bpe, TokensSpellTheText) {
  auto tok = load("roberta-bpe");
  ASSERT_NE(tok, nullptr);
  EncodeOptions bare;
  bare.add_special_tokens = false;
  std::string bytes;
  for (const auto& r : read_bpe_goldens("roberta")) {
    if (r.text.find('<') != std::string::npos) continue;  // added tokens spell themselves
    auto enc = tok->encode(r.text, bare);
    ASSERT_TRUE(enc.ok());
    std::string spelled;
    for (auto id : enc->ids) {
      ASSERT_TRUE(byte_level::decode_token(tok->id_to_token(id), bytes)) << id;
      spelled += bytes;
    }
    EXPECT_EQ(spelled, r.text);
  }
}

TEST(Bpe, BatchesCutIntoPiecesMatchWholeTexts) {
  testing::expect_pool_pieces_match_whole_texts("roberta-bpe", "bpe-roberta");
  testing::expect_pool_pieces_match_whole_texts("bpe-prefix-lower", "bpe-prefix-lower");
}

std::vector<std::string> split(std::string_view text) {
  std::vector<std::string> out;
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t end = byte_level::pretoken_end(text, pos);
    out.emplace_back(text.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

using Pieces = std::vector<std::string>;

TEST(ByteLevel, SplitsAsGpt2Pattern) {
  EXPECT_EQ(split("Hello world"), (Pieces{"Hello", " world"}));
  EXPECT_EQ(split("it's they're I'LL"), (Pieces{"it", "'s", " they", "'re", " I", "'", "LL"}));
  EXPECT_EQ(split("'sa !!'s x 's"), (Pieces{"'s", "a", " !!'", "s", " x", " '", "s"}));
  EXPECT_EQ(split("a  b"), (Pieces{"a", " ", " b"}));
  EXPECT_EQ(split("a\n\nb"), (Pieces{"a", "\n", "\n", "b"}));
  EXPECT_EQ(split("a \n b"), (Pieces{"a", " \n", " b"}));
  EXPECT_EQ(split("end   "), (Pieces{"end", "   "}));
  EXPECT_EQ(split("x2026y"), (Pieces{"x", "2026", "y"}));
  EXPECT_EQ(split(" 3.14"), (Pieces{" 3", ".", "14"}));
  EXPECT_EQ(split("Größe über"), (Pieces{"Größe", " über"}));
  EXPECT_EQ(split("東京は 日本"), (Pieces{"東京は", " 日本"}));
  EXPECT_EQ(split("a\u00a0b"), (Pieces{"a", "\u00a0", "b"}));  // NBSP is \s but not " "
  EXPECT_EQ(split("١٢٣ ½"), (Pieces{"١٢٣", " ½"}));           // Nd and No are \p{N}
  EXPECT_EQ(split("e\u0301"), (Pieces{"e", "\u0301"}));       // a combining mark is not \p{L}
  EXPECT_EQ(split("😀👍"), (Pieces{"😀👍"}));
  EXPECT_EQ(split(" "), (Pieces{" "}));
  EXPECT_EQ(split("'"), (Pieces{"'"}));
}

TEST(ByteLevel, AlphabetRoundTrips) {
  std::string bytes;
  for (int b = 0; b < 256; ++b) {
    std::string utf8;
    unicode::append_utf8(utf8, byte_level::byte_char(static_cast<std::uint8_t>(b)));
    ASSERT_TRUE(byte_level::decode_token(utf8, bytes));
    EXPECT_EQ(bytes, std::string(1, static_cast<char>(b)));
  }
  EXPECT_EQ(byte_level::byte_char(' '), U'\u0120');  // "Ġ"
  EXPECT_EQ(byte_level::byte_char('\n'), U'\u010A');  // "Ċ"
  EXPECT_FALSE(byte_level::decode_token("\u4e2d", bytes));
}

// A word of 210,000 bytes ("the" repeated, which merges) takes O(n log n), not O(n^2).
TEST(Bpe, VeryLongWordEncodes) {
  auto tok = load("roberta-bpe");
  ASSERT_NE(tok, nullptr);
  std::string text;
  for (int i = 0; i < 70000; ++i) text += "the";
  EncodeOptions bare;
  bare.add_special_tokens = false;
  auto enc = tok->encode(text, bare);
  ASSERT_TRUE(enc.ok());
  std::string spelled, bytes;
  for (auto id : enc->ids) {
    ASSERT_TRUE(byte_level::decode_token(tok->id_to_token(id), bytes));
    spelled += bytes;
  }
  EXPECT_EQ(spelled, text);
  EXPECT_LT(enc->ids.size(), text.size() / 2);
}

TEST(Bpe, SpecialsTruncationAndSummary) {
  auto tok = load("roberta-bpe");
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->cls_id(), 0);
  EXPECT_EQ(tok->sep_id(), 2);
  EXPECT_EQ(tok->pad_id(), 1);
  EXPECT_EQ(tok->token_to_id("<mask>"), 4);
  EXPECT_NE(tok->summary().find("BPE (byte-level)"), std::string::npos) << tok->summary();
  EXPECT_NE(tok->summary().find("<s> $A </s>"), std::string::npos) << tok->summary();
  EncodeOptions opts;
  opts.max_length = 4;
  auto enc = tok->encode("one two three four five", opts);
  ASSERT_TRUE(enc.ok());
  ASSERT_EQ(enc->ids.size(), 4u);
  EXPECT_EQ(enc->ids.front(), 0);
  EXPECT_EQ(enc->ids.back(), 2);
  EXPECT_TRUE(enc->truncated());
  auto bad = tok->encode(std::string("ab\xff"), EncodeOptions{});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("byte offset 2"), std::string::npos);
}

nlohmann::json fixture_json() {
  std::ifstream in(fixtures_dir() / "tokenizers" / "roberta-bpe" / "tokenizer.json");
  return nlohmann::json::parse(in);
}

void expect_rejected(const nlohmann::json& j, ErrorCode code, std::vector<std::string> fragments) {
  testing::expect_error(Tokenizer::from_json(j.dump(), "edited/tokenizer.json"), code, std::move(fragments));
}

TEST(Bpe, MalformedFilesAreRejectedByField) {
  auto j = fixture_json();
  j["model"]["merges"][3] = "Ġ zzzz";
  expect_rejected(j, ErrorCode::kInvalidModel, {"model.merges[3]", "zzzz", "not in model.vocab"});
  j = fixture_json();
  j["model"]["merges"][5] = "nospace";
  expect_rejected(j, ErrorCode::kInvalidModel, {"model.merges[5]"});
  j = fixture_json();
  j["model"]["merges"][5] = {"a", "b", "c"};
  expect_rejected(j, ErrorCode::kInvalidModel, {"model.merges[5]"});
  j = fixture_json();
  j["model"]["dropout"] = 0.1;
  expect_rejected(j, ErrorCode::kInvalidModel, {"model.dropout"});
  j = fixture_json();
  j["model"]["byte_fallback"] = true;
  expect_rejected(j, ErrorCode::kInvalidModel, {"model.byte_fallback"});
  j = fixture_json();
  j["model"]["end_of_word_suffix"] = "</w>";
  expect_rejected(j, ErrorCode::kInvalidModel, {"model.end_of_word_suffix"});
  j = fixture_json();
  j["model"]["unk_token"] = "<nope>";
  expect_rejected(j, ErrorCode::kInvalidModel, {"model.unk_token", "<nope>"});
  j = fixture_json();
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  expect_rejected(j, ErrorCode::kUnsupported, {"pre_tokenizer.type", "Whitespace"});
  j = fixture_json();
  j["pre_tokenizer"] = nullptr;
  expect_rejected(j, ErrorCode::kUnsupported, {"pre_tokenizer", "ByteLevel"});
  j = fixture_json();
  j["model"].erase("merges");
  expect_rejected(j, ErrorCode::kInvalidModel, {"model.merges"});
}

// The same file with merges in either form, or with a Sequence around the pre-tokenizer, gives
// the same ids.
TEST(Bpe, AcceptedVariants) {
  auto base = load("roberta-bpe");
  ASSERT_NE(base, nullptr);
  auto j = fixture_json();
  for (auto& m : j["model"]["merges"]) {
    const std::string s = m.get<std::string>();
    m = {s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)};
  }
  j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {j["pre_tokenizer"]}}};
  auto variant = Tokenizer::from_json(j.dump(), "variant");
  ASSERT_TRUE(variant.ok()) << variant.status().to_string();
  for (const char* text : {"Hello, World!", "it's 2026 <mask> 東京", "  spaces\n\nand\ttabs  "}) {
    EXPECT_EQ((*variant)->encode(text, EncodeOptions{})->ids, base->encode(text, EncodeOptions{})->ids)
        << text;
  }
}

}  // namespace
}  // namespace embd::tokenizer
