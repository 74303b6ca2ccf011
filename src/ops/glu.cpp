#include "ops/ops.h"
#include "ops/validate.h"

namespace embd::ops {

Status glu(Backend& be, const backend::GluArgs& a) {
  EMBD_TRY(detail::check_supported(be, backend::Op::kGlu, a.in.dtype));
  EMBD_TRY(detail::check_mat("glu", "input", a.in));
  if (a.in.cols % 2 != 0) {
    return invalid_argument("glu: input has an odd number of columns (" + std::to_string(a.in.cols) + ")");
  }
  EMBD_TRY(detail::check_shape("glu", "output", a.out, a.in.rows, a.in.cols / 2));
  EMBD_TRY(detail::check_dtype("glu", "output", a.out, a.in.dtype));
  if (a.activation == Activation::kNone) return invalid_argument("glu: needs an activation");
  if (a.in.rows == 0) return ok_status();
  return be.glu(a);
}

}  // namespace embd::ops
