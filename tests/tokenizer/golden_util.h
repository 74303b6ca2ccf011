// Test helpers: the fixture tokenizers, the golden JSONL records, parity with them, and
// load-error checks.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace embd::tokenizer::testing {

inline std::filesystem::path fixtures_dir() { return EMBD_FIXTURES_DIR; }
inline std::filesystem::path fixture_model_dir() { return fixtures_dir() / "models" / "tiny-jina"; }

struct GoldenRecord {
  std::string id;
  std::string text;
  std::vector<std::int32_t> ids;
  bool truncated = false;
};

inline std::vector<GoldenRecord> read_goldens(const std::filesystem::path& path) {
  std::vector<GoldenRecord> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    GoldenRecord r;
    r.id = j.at("id").get<std::string>();
    r.text = j.at("text").get<std::string>();
    r.ids = j.at("ids").get<std::vector<std::int32_t>>();
    if (j.contains("truncated")) r.truncated = j.at("truncated").get<bool>();
    out.push_back(std::move(r));
  }
  return out;
}

// A record of goldens/<name>.jsonl written by make_bpe_fixtures.py / make_unigram_fixtures.py:
// HF's ids and byte offsets of one text (no offsets for the long texts).
struct OffsetGolden {
  std::string text;
  std::vector<std::int32_t> ids;
  std::vector<TokenOffsets> offsets;
};

inline std::vector<OffsetGolden> read_offset_goldens(const std::string& name) {
  std::ifstream in(fixtures_dir() / "goldens" / (name + ".jsonl"));
  std::vector<OffsetGolden> out;
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    OffsetGolden g{j.at("text").get<std::string>(), j.at("ids").get<std::vector<std::int32_t>>(), {}};
    if (j.contains("offsets")) {
      for (const auto& o : j.at("offsets")) g.offsets.push_back({o.at(0).get<std::size_t>(), o.at(1).get<std::size_t>()});
    }
    out.push_back(std::move(g));
  }
  return out;
}

// tests/fixtures/tokenizers/<dir>, or null (with a test failure).
inline std::unique_ptr<Tokenizer> load_fixture_tokenizer(const std::string& dir) {
  auto t = Tokenizer::load(fixtures_dir() / "tokenizers" / dir);
  EXPECT_TRUE(t.ok()) << t.status().to_string();
  return t.ok() ? std::move(t).value() : nullptr;
}

inline std::string printable(std::string_view text) {
  return nlohmann::json(std::string(text)).dump().substr(0, 200);
}

// Every one of the `count` records of goldens/<golden>.jsonl gets HF's ids and offsets from
// the fixture tokenizer in `dir`; the first difference of each text is reported.
inline void expect_golden_parity(const std::string& dir, const std::string& golden, std::size_t count) {
  auto tok = load_fixture_tokenizer(dir);
  ASSERT_NE(tok, nullptr);
  const auto records = read_offset_goldens(golden);
  ASSERT_EQ(records.size(), count);
  EncodeOptions with_offsets;
  with_offsets.offsets = true;
  std::size_t same_ids = 0, same_offsets = 0, with_offset_records = 0;
  for (const auto& r : records) {
    auto enc = tok->encode(r.text, with_offsets);
    ASSERT_TRUE(enc.ok()) << printable(r.text) << ": " << enc.status().to_string();
    if (enc->ids == r.ids) {
      ++same_ids;
    } else {
      ADD_FAILURE() << "ids differ for " << printable(r.text) << "\n  expected "
                    << ::testing::PrintToString(r.ids) << "\n  got      "
                    << ::testing::PrintToString(enc->ids);
    }
    if (r.offsets.empty()) continue;
    ++with_offset_records;
    if (enc->offsets == r.offsets) {
      ++same_offsets;
    } else if (enc->ids == r.ids) {
      for (std::size_t i = 0; i < r.offsets.size(); ++i) {
        if (enc->offsets[i] == r.offsets[i]) continue;
        ADD_FAILURE() << "offsets differ for " << printable(r.text) << " at token " << i << " ("
                      << tok->id_to_token(r.ids[i]) << "): expected [" << r.offsets[i].begin << ", "
                      << r.offsets[i].end << "), got [" << enc->offsets[i].begin << ", "
                      << enc->offsets[i].end << ")";
        break;
      }
    }
  }
  std::printf("[golden] %s: ids %zu/%zu, offsets %zu/%zu identical\n", golden.c_str(), same_ids,
              records.size(), same_offsets, with_offset_records);
  EXPECT_EQ(same_ids, records.size());
  EXPECT_EQ(same_offsets, with_offset_records);
}

// Long texts in a batch of few texts are cut into pieces over a pool: each must get exactly the
// ids of the whole text. Texts: the golden file's two long ones (9 and 17 KB) and 40 KB of
// letter runs between single spaces (nearly every one a cut), double spaces and U+3000.
inline void expect_pool_pieces_match_whole_texts(const std::string& dir, const std::string& golden) {
  auto tok = load_fixture_tokenizer(dir);
  ASSERT_NE(tok, nullptr);
  const auto records = read_offset_goldens(golden);
  std::vector<std::string> texts;
  for (const auto& r : records) {
    if (r.text.size() > 8192) texts.push_back(r.text);
  }
  ASSERT_EQ(texts.size(), 2u) << golden;
  std::mt19937 rng(7);
  std::string words;
  while (words.size() < 40000) {
    words += std::string(1 + rng() % 9, static_cast<char>('a' + rng() % 26));
    words += rng() % 7 == 0 ? "  " : (rng() % 11 == 0 ? "\u3000" : " ");
  }
  texts.push_back(words);
  ThreadPool pool(4);
  const auto batch = tok->encode_batch(texts, EncodeOptions{}, &pool);
  for (std::size_t i = 0; i < texts.size(); ++i) {
    ASSERT_TRUE(batch[i].ok());
    auto whole = tok->encode(texts[i], EncodeOptions{});
    ASSERT_TRUE(whole.ok());
    EXPECT_EQ(batch[i]->ids, whole->ids) << dir << " text " << i;
    for (const auto& r : records) {
      if (r.text == texts[i]) {
        EXPECT_EQ(batch[i]->ids, r.ids) << dir << " text " << i;
      }
    }
  }
}

// A tokenizer file (named "edited/tokenizer.json") that must fail with `code` and a message
// naming the file and every one of `fragments`.
inline void expect_error(const Result<std::unique_ptr<Tokenizer>>& r, ErrorCode code,
                         std::vector<std::string> fragments) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), code) << r.status().to_string();
  fragments.push_back("edited/tokenizer.json");
  for (const auto& f : fragments) {
    EXPECT_NE(r.status().message().find(f), std::string::npos)
        << "'" << f << "' not in: " << r.status().message();
  }
}

}  // namespace embd::tokenizer::testing
