// Test helpers: the fixture tokenizer, the golden JSONL records, and load-error checks.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
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
