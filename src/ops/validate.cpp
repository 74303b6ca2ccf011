#include "ops/validate.h"

#include <algorithm>

namespace embd::ops::detail {

static std::string where(const char* op, const char* what) {
  return std::string(op) + ": " + what;
}

Status check_supported(const backend::Backend& be, backend::Op op, DType dtype) {
  if (be.supports(op, dtype)) return ok_status();
  return unsupported(std::string(backend::op_name(op)) + " is not supported in " +
                     std::string(dtype_name(dtype)) + " on " + be.name());
}

Status check_mat(const char* op, const char* what, const Mat& m) {
  if (m.rows < 0 || m.cols <= 0) {
    return invalid_argument(where(op, what) + " has shape [" + std::to_string(m.rows) + ", " +
                            std::to_string(m.cols) + "]");
  }
  if (m.ld < m.cols) {
    return invalid_argument(where(op, what) + " row stride " + std::to_string(m.ld) +
                            " is smaller than its " + std::to_string(m.cols) + " columns");
  }
  if (m.rows > 0 && m.data == nullptr) return invalid_argument(where(op, what) + " has no data");
  return ok_status();
}

Status check_shape(const char* op, const char* what, const Mat& m, std::int64_t rows,
                   std::int64_t cols) {
  EMBD_TRY(check_mat(op, what, m));
  if (m.rows != rows || m.cols != cols) {
    return invalid_argument(where(op, what) + " is [" + std::to_string(m.rows) + ", " +
                            std::to_string(m.cols) + "], expected [" + std::to_string(rows) +
                            ", " + std::to_string(cols) + "]");
  }
  return ok_status();
}

Status check_dtype(const char* op, const char* what, const Mat& m, DType dtype) {
  if (m.dtype == dtype) return ok_status();
  return invalid_argument(where(op, what) + " is " + std::string(dtype_name(m.dtype)) +
                          ", expected " + std::string(dtype_name(dtype)));
}

Status check_offsets(const std::int32_t* cu, std::int64_t batch, std::int64_t tokens,
                            std::int64_t max_seqlen, const char* op) {
  if (!cu) return invalid_argument(std::string(op) + ": missing host sequence offsets");
  if (cu[0] != 0) return invalid_argument(std::string(op) + ": sequence offsets must start at 0");
  std::int64_t longest = 0;
  for (std::int64_t b = 0; b < batch; ++b) {
    const std::int64_t len = cu[b + 1] - cu[b];
    if (len <= 0) {
      return invalid_argument(std::string(op) + ": sequence " + std::to_string(b) + " has length " +
                              std::to_string(len));
    }
    longest = std::max(longest, len);
  }
  if (cu[batch] != tokens) {
    return invalid_argument(std::string(op) + ": sequence offsets cover " + std::to_string(cu[batch]) +
                            " tokens, the matrix has " + std::to_string(tokens));
  }
  if (longest > max_seqlen) {
    return invalid_argument(std::string(op) + ": a sequence of " + std::to_string(longest) +
                            " tokens exceeds max_seqlen " + std::to_string(max_seqlen));
  }
  return ok_status();
}

}  // namespace embd::ops::detail
