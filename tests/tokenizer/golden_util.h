// Test helpers: the fixture tokenizer and the golden JSONL records.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

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

}  // namespace embd::tokenizer::testing
