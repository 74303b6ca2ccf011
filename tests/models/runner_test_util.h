// Shared by the ModelRunner tests: the tiny-jina fixture and its golden texts as packed batches,
// random batches, and runners driven through both pipeline slots.
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "backends/registry.h"
#ifdef EMBD_HAVE_CUDA
#include "backends/cuda/cuda_backend.h"
#endif
#include "common/golden.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "io/synthetic_model.h"
#include "runtime/batch.h"
#include "runtime/model_runner.h"

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

// Sequences of the given lengths with random ids below `vocab`.
inline runtime::PackedBatch random_batch(const std::vector<std::int32_t>& lengths, std::uint32_t seed,
                                         std::int64_t vocab) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::int32_t> id(1, static_cast<std::int32_t>(vocab - 1));
  runtime::PackedBatch b;
  b.cu_seqlens.push_back(0);
  for (std::int32_t len : lengths) {
    for (std::int32_t i = 0; i < len; ++i) b.ids.push_back(id(rng));
    b.cu_seqlens.push_back(b.cu_seqlens.back() + len);
    b.max_seqlen = std::max(b.max_seqlen, len);
  }
  return b;
}

// Batches whose shapes repeat with new ids (and, for two of them, new offsets of the same
// shape), a larger batch in between that grows every buffer, then the small shapes again.
inline std::vector<runtime::PackedBatch> batch_series(std::int64_t vocab) {
  std::vector<runtime::PackedBatch> out;
  for (std::uint32_t round = 0; round < 4; ++round) {
    out.push_back(random_batch({7, 3, 12}, 10 + round, vocab));
    out.push_back(random_batch(round % 2 ? std::vector<std::int32_t>{12, 3, 7} : std::vector<std::int32_t>{3, 12, 7},
                               20 + round, vocab));
    out.push_back(random_batch({1}, 30 + round, vocab));
  }
  out.push_back(random_batch({300, 200, 5}, 40, vocab));
  for (std::uint32_t round = 0; round < 3; ++round) out.push_back(random_batch({7, 3, 12}, 50 + round, vocab));
  return out;
}

// Runs `batches` through `runner`, two in flight at a time (both slots), returning each's rows.
inline std::vector<std::vector<float>> run_pipelined(runtime::ModelRunner& runner,
                                                     const std::vector<runtime::PackedBatch>& batches) {
  std::vector<std::vector<float>> rows(batches.size());
  std::size_t finished = 0;
  // finish() lends the rows until the runner's next call: copy them out at once.
  const auto finish = [&](std::vector<float>& out) {
    std::span<const float> lent;
    const Status s = runner.finish(lent);
    out.assign(lent.begin(), lent.end());
    return s;
  };
  for (std::size_t i = 0; i < batches.size(); ++i) {
    if (i >= runner.pipeline_depth()) {
      EXPECT_TRUE(runner.wait_almost_done().ok());
      const Status s = finish(rows[finished++]);
      EXPECT_TRUE(s.ok()) << s.to_string();
    }
    const Status s = runner.start(batches[i]);
    EXPECT_TRUE(s.ok()) << s.to_string();
  }
  while (finished < batches.size()) EXPECT_TRUE(finish(rows[finished++]).ok());
  return rows;
}

inline std::unique_ptr<runtime::ModelRunner> runner_on(std::unique_ptr<backend::Backend> be,
                                                       const TinyJina& model, DType dtype,
                                                       std::int64_t graph_tokens) {
  auto r = runtime::ModelRunner::create(std::move(be), model.config, **model.weights, dtype, graph_tokens);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? std::move(r).value() : nullptr;
}

inline std::unique_ptr<backend::Backend> cpu_backend() {
  return std::move(backend::create_backends("cpu", {}).value().front());
}

// A model of the published small-en shape (random weights) written to a temporary folder, which
// goes with it: every fused CUDA kernel runs on it (tensor-core attention, the Hopper GEMMs).
struct SmallEnModel {
  explicit SmallEnModel(const std::string& tag)
      : dir(std::filesystem::temp_directory_path() / ("embd-" + tag + "-" + std::to_string(::getpid()))),
        written(io::write_synthetic_model(dir, io::SyntheticModelSpec{})),
        config(io::load_model_config(dir.string())),
        weights(io::WeightSet::open_dir(dir.string())) {}
  ~SmallEnModel() { std::filesystem::remove_all(dir); }
  bool ok() const { return written.ok() && config.ok() && weights.ok(); }

  std::filesystem::path dir;
  Status written;
  Result<io::ModelConfig> config;
  Result<std::unique_ptr<io::WeightSet>> weights;
};

// Short batches of it (recorded and replayed once each slot saw them three times) and long ones
// (eager, fused kernels at every size), some sequences longer than three key tiles (attention's
// tile skipping).
inline std::vector<runtime::PackedBatch> short_and_long_batches(std::int64_t vocab) {
  std::vector<runtime::PackedBatch> batches;
  for (std::uint32_t round = 0; round < 6; ++round) {
    batches.push_back(random_batch({300, 200, 5}, 60 + round, vocab));
    batches.push_back(random_batch({900, 700, 128, 64, 1, 1200}, 80 + round, vocab));
  }
  return batches;
}

#ifdef EMBD_HAVE_CUDA
// A runner on GPU 0 with these backend options, recording batches of up to 1024 tokens.
inline std::unique_ptr<runtime::ModelRunner> cuda_runner(const SmallEnModel& model, DType dtype,
                                                         const backend::cuda::CudaBackendOptions& options) {
  auto be = backend::cuda::make_cuda_backend(0, options);
  EXPECT_TRUE(be.ok()) << be.status().to_string();
  if (!be.ok()) return nullptr;
  auto r = runtime::ModelRunner::create(std::move(be).value(), *model.config, **model.weights, dtype, 1024);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? std::move(r).value() : nullptr;
}
#endif

}  // namespace embd::testing
