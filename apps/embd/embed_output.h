// Where `embd embed` writes its rows: JSON Lines ({"index", "embedding", "tokens"}) to a file or
// standard output, or a float32 .npy matrix (NumPy format 1.0, '<f4', C order, shape (n, dim)).
//
// Rows must be written in input order. The .npy writer reserves a fixed-size header, streams the
// rows, and rewrites the header with the final row count in finish(). Not thread-safe. Errors
// name the output file.
#pragma once

#include <cstddef>
#include <cstdio>
#include <memory>
#include <string>

#include "embd/engine.hpp"
#include "embd/status.hpp"

namespace embd::cli {

class EmbedOutput {
 public:
  virtual ~EmbedOutput() = default;
  // Appends every row of `rows`; `first_index` is the input index of rows.row(0).
  virtual Status write(const Embeddings& rows, std::size_t first_index) = 0;
  // Flushes and completes the file; `dim` is used when no row was written.
  virtual Status finish(std::size_t dim) = 0;
};

// path empty or "-" = JSON Lines on standard output; a path ending in ".npy" = .npy; else JSONL.
Result<std::unique_ptr<EmbedOutput>> open_embed_output(const std::string& path);

// The NumPy 1.0 header for a float32 C-order (rows, dim) matrix, padded to `total_size` bytes
// (a multiple of 64). Exposed for tests of the format.
std::string npy_header(std::size_t rows, std::size_t dim, std::size_t total_size);

}  // namespace embd::cli
