// Post-processing of pooled embeddings, in F32: Matryoshka truncation and L2 normalisation.
// Pure functions on caller-owned memory; thread-safe.
#pragma once

#include <cstddef>
#include <span>

namespace embd::runtime {

// Divides each of the `rows` rows of `dim` floats by its L2 norm. The norm is accumulated in
// double and floored at 1e-12 (as torch.nn.functional.normalize does), so a zero row stays zero
// instead of becoming NaN.
void l2_normalize_rows(std::span<float> data, std::size_t rows, std::size_t dim);

// Copies the first `dim` of `hidden` floats of a pooled row (Matryoshka truncation).
void copy_truncated_row(std::span<const float> pooled_row, std::span<float> out_row);

}  // namespace embd::runtime
