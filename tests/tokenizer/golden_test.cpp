// Parity with Hugging Face `tokenizers` on the golden strings (ids include [CLS]/[SEP]).
#include <gtest/gtest.h>

#include "tokenizer/golden_util.h"
#include "tokenizer/tokenizer.h"

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
                   std::size_t expected_count) {
  auto tok = Tokenizer::load(fixture_model_dir());
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

}  // namespace
}  // namespace embd::tokenizer
