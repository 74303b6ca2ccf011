// Synthetic JinaBERT v2 model directories: the exact published architecture (JINABERT.md §2.1
// tensor names and shapes, no prefix, pooler present) with deterministic random weights, for
// benchmarks and tests. Not a trained model.
//
// Weights follow the fixtures' recipe: embeddings and Linear weights N(0, 0.05), Linear biases
// N(0, 0.02), LayerNorm gamma 1 + N(0, 0.1), beta N(0, 0.05). Each tensor draws from its own
// mt19937_64 seeded with FNV-1a("<seed>/<tensor name>") and Box-Muller normals, so a tensor's
// values depend only on the seed, its name and its size, on every platform.
// Stateless and thread-safe. Errors: kInvalidArgument (bad sizes), kIoError (writing).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "core/dtype.h"
#include "core/status.h"

namespace embd::io {

// Defaults: jina-embeddings-v2-small-en, weights stored F16 as published.
struct SyntheticModelSpec {
  std::int64_t hidden = 512;
  std::int64_t layers = 4;
  std::int64_t heads = 8;
  std::int64_t intermediate = 2048;
  std::int64_t vocab = 30528;
  std::int64_t type_vocab = 2;
  std::int64_t max_position = 8192;
  DType dtype = DType::kF16;
  std::string seed = "embd-synthetic-v1";
  std::filesystem::path tokenizer;  // copied to <dir>/tokenizer.json when not empty
};

// Creates `dir` (and parents) and writes config.json, model.safetensors and, when given,
// tokenizer.json. Existing files of those names are replaced.
Status write_synthetic_model(const std::filesystem::path& dir, const SyntheticModelSpec& spec);

}  // namespace embd::io
