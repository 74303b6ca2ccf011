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

Status gated_linear(Backend& be, const backend::GatedLinearArgs& a) {
  if (a.weight == nullptr) return invalid_argument("gated_linear: no weight");
  const backend::LinearWeight& w = *a.weight;
  if (w.out_features % 2 != 0 || w.has_bias) {
    return invalid_argument("gated_linear: weight [" + std::to_string(w.out_features) + ", " +
                            std::to_string(w.in_features) + "] must have an even row count and no bias");
  }
  if (a.activation == Activation::kNone) return invalid_argument("gated_linear: needs an activation");
  if (!be.fuses_gated_linear(w, a.activation)) {
    EMBD_TRY(linear(be, w, a.x, a.scratch));
    return glu(be, {a.scratch, a.out, w.activates_first_half, a.activation});
  }
  EMBD_TRY(detail::check_shape("gated_linear", "input", a.x, a.x.rows, w.in_features));
  EMBD_TRY(detail::check_shape("gated_linear", "output", a.out, a.x.rows, w.out_features / 2));
  EMBD_TRY(detail::check_dtype("gated_linear", "input", a.x, w.dtype));
  EMBD_TRY(detail::check_dtype("gated_linear", "output", a.out, w.dtype));
  if (a.scratch.data != nullptr) {
    EMBD_TRY(detail::check_shape("gated_linear", "scratch", a.scratch, a.x.rows, w.out_features));
    EMBD_TRY(detail::check_dtype("gated_linear", "scratch", a.scratch, w.dtype));
  }
  if (a.x.rows > 0 && a.x.data == a.out.data) return invalid_argument("gated_linear: output aliases input");
  if (a.x.rows == 0) return ok_status();
  return be.gated_linear(a);
}

}  // namespace embd::ops
