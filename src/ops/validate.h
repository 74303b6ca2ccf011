// Shared argument checks of the ops layer.
#pragma once

#include <string>

#include "backends/backend.h"

namespace embd::ops::detail {

// kUnsupported when the backend cannot run `op` in `dtype`.
Status check_supported(const backend::Backend& be, backend::Op op, DType dtype);
// A usable matrix: non-null data (unless rows == 0), cols > 0, ld >= cols.
Status check_mat(const char* op, const char* what, const Mat& m);
// Same rows, and optionally the expected cols and dtype.
Status check_shape(const char* op, const char* what, const Mat& m, std::int64_t rows,
                   std::int64_t cols);
Status check_dtype(const char* op, const char* what, const Mat& m, DType dtype);

// Host offsets [batch + 1] that start at 0, give every sequence >= 1 token, end at `tokens`,
// and keep every sequence within max_seqlen.
Status check_offsets(const std::int32_t* cu, std::int64_t batch, std::int64_t tokens,
                     std::int64_t max_seqlen, const char* op);

}  // namespace embd::ops::detail
