// Response encoding (Google Benchmark): an embedding row printed as JSON floats, std::to_chars
// one value at a time (the encoder before float_text) against write_float_list, on one row
// repeated and on 1024 different rows (as a server sees them), and the whole TEI body for 1 and
// 32 texts of 512 dimensions. Run: build/<dir>/bench/server/encode_bench
#include <benchmark/benchmark.h>

#include <charconv>
#include <cmath>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "server/float_text.h"
#include "server/json_codec.h"

namespace {

// Unit-length rows of 512 values, as a normalised embedding has.
std::vector<float> embedding_values(std::size_t rows, std::size_t dim) {
  std::mt19937 random(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(rows * dim);
  for (std::size_t r = 0; r < rows; ++r) {
    double norm = 0;
    for (std::size_t j = 0; j < dim; ++j) {
      values[r * dim + j] = normal(random);
      norm += values[r * dim + j] * values[r * dim + j];
    }
    for (std::size_t j = 0; j < dim; ++j) values[r * dim + j] /= static_cast<float>(std::sqrt(norm));
  }
  return values;
}

void BM_RowToChars(benchmark::State& state) {
  const auto values = embedding_values(1, 512);
  std::string out;
  for (auto _ : state) {
    out.clear();
    for (float value : values) {
      char buffer[32];
      auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
      out.append(buffer, end);
      out += ',';
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(values.size()));
}

void BM_RowFloatList(benchmark::State& state) {
  const auto values = embedding_values(1, 512);
  std::string out(embd::server::float_list_room(values.size()), '\0');
  for (auto _ : state) {
    char* end = embd::server::write_float_list(values, out.data());
    benchmark::DoNotOptimize(end);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(values.size()));
}

// As a server prints them: a different row each time (1024 rows, 2 MiB, cycled), so the branch
// predictor cannot learn one row's digit patterns as it does when one row repeats.
void BM_DistinctRowsFloatList(benchmark::State& state) {
  constexpr std::size_t kRows = 1024, kDim = 512;
  const auto values = embedding_values(kRows, kDim);
  std::string out(embd::server::float_list_room(kDim), '\0');
  std::size_t row = 0;
  for (auto _ : state) {
    char* end = embd::server::write_float_list(std::span<const float>(values).subspan(row * kDim, kDim),
                                               out.data());
    benchmark::DoNotOptimize(end);
    row = (row + 1) % kRows;
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kDim));
}

void BM_TeiBody(benchmark::State& state) {
  const std::size_t rows = static_cast<std::size_t>(state.range(0));
  embd::Embeddings embeddings;
  embeddings.rows = rows;
  embeddings.dim = 512;
  embeddings.data = embedding_values(rows, 512);
  embeddings.token_counts.assign(rows, 16);
  for (auto _ : state) {
    auto body = embd::server::encode_tei_embeddings(embeddings);
    benchmark::DoNotOptimize(body.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(rows * 512));
}

BENCHMARK(BM_RowToChars);
BENCHMARK(BM_RowFloatList);
BENCHMARK(BM_DistinctRowsFloatList);
BENCHMARK(BM_TeiBody)->Arg(1)->Arg(32);

}  // namespace

BENCHMARK_MAIN();
