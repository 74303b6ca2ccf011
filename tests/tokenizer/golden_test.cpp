// Parity with Hugging Face `tokenizers` on the golden strings (ids include [CLS]/[SEP]).
#include <gtest/gtest.h>

#include "tokenizer/golden_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_text.h"

namespace embd::tokenizer {
namespace {

using testing::fixture_model_dir;
using testing::fixtures_dir;
using testing::read_goldens;

std::string join_tokens(const Tokenizer& tok, const std::vector<std::int32_t>& ids) {
  std::string s;
  for (auto id : ids) s += tok.id_to_token(id) + " ";
  return s;
}

void expect_parity(const std::filesystem::path& golden, std::size_t max_length,
                   std::size_t expected_count,
                   const std::filesystem::path& model_dir = fixture_model_dir()) {
  auto tok = Tokenizer::load(model_dir);
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  auto records = read_goldens(golden);
  ASSERT_EQ(records.size(), expected_count) << golden;
  EncodeOptions opts;
  opts.max_length = max_length;
  std::size_t matched = 0;
  for (const auto& r : records) {
    auto enc = (*tok)->encode(r.text, opts);
    ASSERT_TRUE(enc.ok()) << r.id << ": " << enc.status().to_string();
    if (enc->ids == r.ids) {
      ++matched;
    } else {
      ADD_FAILURE() << r.id << " differs\n  expected: " << join_tokens(**tok, r.ids)
                    << "\n  got:      " << join_tokens(**tok, enc->ids);
    }
    EXPECT_EQ(enc->truncated(), r.truncated) << r.id;
  }
  std::printf("[golden] %s: %zu/%zu identical\n", golden.filename().c_str(), matched, records.size());
  EXPECT_EQ(matched, records.size());
}

TEST(TokenizerGolden, TokenizerJsonlAll350) {
  expect_parity(fixtures_dir() / "goldens" / "tokenizer.jsonl", 0, 350);
}

TEST(TokenizerGolden, ModelTextsTinyJina) {
  expect_parity(fixtures_dir() / "goldens" / "tiny-jina.fp64.jsonl", 0, 40);
}

// tiny-bert's goldens are truncated to 512 ids ([CLS] + 510 + [SEP]) by transformers.
TEST(TokenizerGolden, ModelTextsTinyBertTruncated512) {
  expect_parity(fixtures_dir() / "goldens" / "tiny-bert.fp64.jsonl", 512, 40);
}

// tiny-roberta's (the roberta-bpe tokenizer; its 130-row position table holds 128 tokens).
TEST(TokenizerGolden, ModelTextsTinyRobertaTruncated128) {
  expect_parity(fixtures_dir() / "goldens" / "tiny-roberta.fp64.jsonl", 128, 40,
                fixtures_dir() / "models" / "tiny-roberta");
}

// tiny-xlmr's (a Unigram tokenizer; <s> + 510 + </s> when truncated).
TEST(TokenizerGolden, ModelTextsTinyXlmrTruncated512) {
  expect_parity(fixtures_dir() / "goldens" / "tiny-xlmr.fp64.jsonl", 512, 40,
                fixtures_dir() / "models" / "tiny-xlmr");
}

// tiny-mpnet's (all-mpnet-base-v2's layout: BertNormalizer, WordPiece, <s> $A </s>).
TEST(TokenizerGolden, ModelTextsTinyMpnetTruncated512) {
  expect_parity(fixtures_dir() / "goldens" / "tiny-mpnet.fp64.jsonl", 512, 40,
                fixtures_dir() / "models" / "tiny-mpnet");
}

// tiny-distilbert's (distilbert-base-uncased's layout: [CLS] $A [SEP] over a cut vocabulary).
TEST(TokenizerGolden, ModelTextsTinyDistilbertTruncated512) {
  expect_parity(fixtures_dir() / "goldens" / "tiny-distilbert.fp64.jsonl", 512, 40,
                fixtures_dir() / "models" / "tiny-distilbert");
}

// With EncodeOptions::offsets the ids are unchanged and every token points at the bytes it came
// from: those bytes, normalised as the fixture's BertNormalizer does (lowercase, accents off),
// spell the token (a continuation without its ##; an added token matches the raw bytes; a token
// that shares a character with its neighbour is part of that spelling); an
// [UNK] covers a non-empty word; the template's specials have {0, 0}; and tokens never go back
// in the text. Over the 350 tokenizer strings (CJK, accents, controls, emoji, added tokens),
// whole and truncated from either side.
TEST(TokenizerGolden, OffsetsPointAtTheSourceOfEveryToken) {
  auto tok = Tokenizer::load(fixture_model_dir());
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  const auto records = read_goldens(fixtures_dir() / "goldens" / "tokenizer.jsonl");
  ASSERT_EQ(records.size(), 350u);
  const std::int32_t unk = (*tok)->token_to_id("[UNK]");
  std::size_t checked = 0;
  for (const auto& r : records) {
    for (auto [max_length, direction] : {std::pair{std::size_t{0}, TruncationDirection::kRight},
                                         std::pair{std::size_t{9}, TruncationDirection::kRight},
                                         std::pair{std::size_t{9}, TruncationDirection::kLeft}}) {
      SCOPED_TRACE(r.id + " max_length " + std::to_string(max_length));
      EncodeOptions plain;
      plain.max_length = max_length;
      plain.direction = direction;
      EncodeOptions with = plain;
      with.offsets = true;
      auto want = (*tok)->encode(r.text, plain);
      auto got = (*tok)->encode(r.text, with);
      ASSERT_TRUE(want.ok() && got.ok());
      ASSERT_EQ(got->ids, want->ids);
      ASSERT_EQ(got->offsets.size(), got->ids.size());
      EXPECT_EQ(got->offsets.front(), TokenOffsets{});  // [CLS]
      EXPECT_EQ(got->offsets.back(), TokenOffsets{});   // [SEP]
      for (std::size_t i = 1; i + 1 < got->ids.size(); ++i) {
        const TokenOffsets o = got->offsets[i];
        ASSERT_LT(o.begin, o.end) << "token " << i;
        ASSERT_LE(o.end, r.text.size()) << "token " << i;
        // Pieces of one source character (a Hangul syllable decomposes into jamo that WordPiece
        // may split) each point at the whole character, so neighbours may overlap there.
        const TokenOffsets prev = got->offsets[i - 1], next = got->offsets[i + 1];
        // (or with a neighbour that truncation removed).
        const bool edge = got->truncated() && (i == 1 || i + 2 == got->ids.size());
        const bool shared = edge || (i > 1 && o.begin < prev.end) || (i + 2 < got->ids.size() && next.begin < o.end);
        if (i > 1) {
          EXPECT_GE(o.begin, prev.begin) << "token " << i;
        }
        const std::string_view raw = std::string_view(r.text).substr(o.begin, o.end - o.begin);
        std::string token = (*tok)->id_to_token(got->ids[i]);
        if (got->ids[i] == unk || token == raw) continue;
        if (token.rfind("##", 0) == 0) token.erase(0, 2);
        std::string normalized, spelled;
        unicode::normalize_bert(raw, unicode::NormalizeFlags{}, normalized);
        for (char c : normalized) {
          if (c != ' ') spelled += c;  // CJK characters come padded with spaces
        }
        if (shared) {
          EXPECT_NE(spelled.find(token), std::string::npos) << "token " << i;
        } else {
          EXPECT_EQ(spelled, token) << "token " << i << " at [" << o.begin << ", " << o.end << ")";
        }
        ++checked;
      }
    }
  }
  std::printf("[offsets] %zu tokens spelled by their source bytes\n", checked);
  EXPECT_GT(checked, 3000u);
}

}  // namespace
}  // namespace embd::tokenizer
