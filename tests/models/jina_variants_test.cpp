// The JinaBERT block layouts without a published fixture (qk_post_norm = base-code, qk_norm =
// base-es) against a float64 numpy reference of JINABERT.md §3.4 (jina_variant_reference.py),
// which writes a tiny random model of that layout and its expected embeddings.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "backends/registry.h"
#include "common/golden.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "runtime/model_runner.h"

namespace embd {
namespace {

class JinaVariant : public ::testing::TestWithParam<std::string> {};

TEST_P(JinaVariant, MatchesFloat64Reference) {
  const std::string variant = GetParam();
  const auto dir = std::filesystem::temp_directory_path() /
                   ("embd-variant-" + variant + "-" + std::to_string(::getpid()));
  const std::string cmd = "/usr/bin/python3 " EMBD_SOURCE_DIR "/tests/models/jina_variant_reference.py " +
                          variant + " " + dir.string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto config = io::load_model_config(dir);
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  auto weights = io::WeightSet::open_dir(dir);
  ASSERT_TRUE(weights.ok()) << weights.status().to_string();
  auto be = backend::create_backends("cpu", {});
  ASSERT_TRUE(be.ok());
  auto runner = runtime::ModelRunner::create(std::move(be.value().front()), *config, **weights, DType::kF32);
  ASSERT_TRUE(runner.ok()) << runner.status().to_string();

  std::ifstream in(dir / "expected.json");
  const auto expected = nlohmann::json::parse(in);
  runtime::PackedBatch batch;
  batch.cu_seqlens.push_back(0);
  for (const auto& e : expected) {
    const auto ids = e["ids"].get<std::vector<std::int32_t>>();
    batch.ids.insert(batch.ids.end(), ids.begin(), ids.end());
    batch.cu_seqlens.push_back(static_cast<std::int32_t>(batch.ids.size()));
    batch.max_seqlen = std::max<std::int32_t>(batch.max_seqlen, static_cast<std::int32_t>(ids.size()));
  }
  std::vector<float> pooled;
  Status s = (*runner)->run(batch, pooled);
  ASSERT_TRUE(s.ok()) << s.to_string();
  const std::size_t h = (*runner)->hidden_size();
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto ref = expected[i]["embedding"].get<std::vector<double>>();
    const auto e = testing::compare(pooled.data() + i * h, ref);
    EXPECT_LE(e.rel_l2, 1e-5) << variant << " sequence " << i;
    EXPECT_LE(e.max_abs, 1e-5) << variant << " sequence " << i;
  }
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Layouts, JinaVariant, ::testing::Values("qk_post_norm", "qk_norm"));

}  // namespace
}  // namespace embd
