#include "ops/ops.h"
#include "ops/validate.h"

namespace embd::ops {

Status linear(Backend& be, const backend::LinearWeight& w, const Mat& x, const Mat& y,
              Activation activation, bool skip_bias) {
  EMBD_TRY(detail::check_supported(be, backend::Op::kLinear, x.dtype));
  EMBD_TRY(detail::check_shape("linear", "input", x, x.rows, w.in_features));
  EMBD_TRY(detail::check_shape("linear", "output", y, x.rows, w.out_features));
  EMBD_TRY(detail::check_dtype("linear", "input", x, w.dtype));
  EMBD_TRY(detail::check_dtype("linear", "output", y, w.dtype));
  if (x.rows > 0 && x.data == y.data) return invalid_argument("linear: output aliases input");
  if (skip_bias && !be.defers_linear_bias(w)) {
    return invalid_argument("linear: skip_bias on a weight whose bias " + be.name() + " adds itself");
  }
  if (x.rows == 0) return ok_status();
  return be.linear({&w, x, y, activation, skip_bias});
}

}  // namespace embd::ops
