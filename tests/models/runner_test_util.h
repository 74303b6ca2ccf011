// Shared by the ModelRunner tests: the tiny-jina fixture and its golden texts as packed batches.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/golden.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "runtime/batch.h"

namespace embd::testing {

// The tiny-jina fixture's config and weights.
struct TinyJina {
  io::ModelConfig config = io::load_model_config(model_dir("tiny-jina")).value();
  Result<std::unique_ptr<io::WeightSet>> weights = io::WeightSet::open_dir(model_dir("tiny-jina"));
  bool ok() const { return weights.ok(); }
};

// The golden texts of tiny-jina from `first` on, as one packed batch.
inline runtime::PackedBatch golden_batch(std::size_t first = 0) {
  const auto goldens = load_goldens("tiny-jina");
  runtime::PackedBatch batch;
  batch.cu_seqlens.push_back(0);
  for (std::size_t i = first; i < goldens.size(); ++i) {
    const auto& g = goldens[i];
    batch.ids.insert(batch.ids.end(), g.ids.begin(), g.ids.end());
    batch.cu_seqlens.push_back(static_cast<std::int32_t>(batch.ids.size()));
    batch.max_seqlen = std::max<std::int32_t>(batch.max_seqlen, static_cast<std::int32_t>(g.ids.size()));
  }
  return batch;
}

inline void expect_same_rows(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-6) << i;
}

}  // namespace embd::testing
