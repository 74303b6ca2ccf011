#include "ops/ops.h"
#include "ops/validate.h"

namespace embd::ops {

Status embed_layernorm(Backend& be, const backend::EmbedLayerNormArgs& a) {
  const Mat& table = a.word_table;
  EMBD_TRY(detail::check_supported(be, backend::Op::kEmbedLayerNorm, table.dtype));
  EMBD_TRY(detail::check_mat("embed_layernorm", "word table", table));
  const std::int64_t hidden = table.cols;
  EMBD_TRY(detail::check_shape("embed_layernorm", "output", a.out, a.tokens, hidden));
  EMBD_TRY(detail::check_dtype("embed_layernorm", "output", a.out, table.dtype));
  if (a.type_table.data) {
    EMBD_TRY(detail::check_shape("embed_layernorm", "type table", a.type_table, a.type_table.rows, hidden));
    EMBD_TRY(detail::check_dtype("embed_layernorm", "type table", a.type_table, table.dtype));
  }
  if (a.position_table.data) {
    EMBD_TRY(detail::check_shape("embed_layernorm", "position table", a.position_table,
                                 a.position_table.rows, hidden));
    EMBD_TRY(detail::check_dtype("embed_layernorm", "position table", a.position_table, table.dtype));
    if (!a.positions) return invalid_argument("embed_layernorm: position table without positions");
  }
  if (!a.gamma || !a.beta) return invalid_argument("embed_layernorm: missing LayerNorm parameters");
  if (a.tokens > 0 && !a.ids) return invalid_argument("embed_layernorm: missing token ids");
  if (a.tokens == 0) return ok_status();
  return be.embed_layernorm(a);
}

Status add_layernorm(Backend& be, const backend::AddLayerNormArgs& a) {
  EMBD_TRY(detail::check_supported(be, backend::Op::kAddLayerNorm, a.x.dtype));
  EMBD_TRY(detail::check_mat("add_layernorm", "input", a.x));
  EMBD_TRY(detail::check_shape("add_layernorm", "output", a.out, a.x.rows, a.x.cols));
  EMBD_TRY(detail::check_dtype("add_layernorm", "output", a.out, a.x.dtype));
  if (a.residual.data) {
    EMBD_TRY(detail::check_shape("add_layernorm", "residual", a.residual, a.x.rows, a.x.cols));
    EMBD_TRY(detail::check_dtype("add_layernorm", "residual", a.residual, a.x.dtype));
  }
  if (!a.gamma || !a.beta) return invalid_argument("add_layernorm: missing LayerNorm parameters");
  if (a.x.rows == 0) return ok_status();
  return be.add_layernorm(a);
}

Status linear_layernorm(Backend& be, const backend::LinearLayerNormArgs& a) {
  static constexpr const char* kOp = "linear_layernorm";
  if (a.weight == nullptr) return invalid_argument("linear_layernorm: no weight");
  const backend::LinearWeight& w = *a.weight;
  EMBD_TRY(detail::check_supported(be, backend::Op::kLinear, w.dtype));
  EMBD_TRY(detail::check_supported(be, backend::Op::kAddLayerNorm, w.dtype));
  EMBD_TRY(detail::check_shape(kOp, "input", a.x, a.x.rows, w.in_features));
  EMBD_TRY(detail::check_dtype(kOp, "input", a.x, w.dtype));
  EMBD_TRY(detail::check_shape(kOp, "output", a.out, a.x.rows, w.out_features));
  EMBD_TRY(detail::check_dtype(kOp, "output", a.out, w.dtype));
  if (a.residual.data) {
    EMBD_TRY(detail::check_shape(kOp, "residual", a.residual, a.x.rows, w.out_features));
    EMBD_TRY(detail::check_dtype(kOp, "residual", a.residual, w.dtype));
  }
  if (!a.gamma || !a.beta) return invalid_argument("linear_layernorm: missing LayerNorm parameters");
  if (a.scratch.data) {
    EMBD_TRY(detail::check_shape(kOp, "scratch", a.scratch, a.x.rows, w.out_features));
    EMBD_TRY(detail::check_dtype(kOp, "scratch", a.scratch, w.dtype));
  }
  if (a.x.rows == 0) return ok_status();
  if (!a.scratch.data && !be.fuses_linear_layernorm(w)) {
    return invalid_argument("linear_layernorm: " + be.name() + " needs scratch room for the projection");
  }
  const auto aliases = [&](const Mat& m) { return m.data != nullptr && m.data == a.x.data; };
  if (aliases(a.out) || aliases(a.scratch) || aliases(a.residual)) {
    return invalid_argument("linear_layernorm: output, scratch or residual aliases the input");
  }
  if (a.scratch.data != nullptr && (a.scratch.data == a.out.data || a.scratch.data == a.residual.data)) {
    return invalid_argument("linear_layernorm: scratch aliases the output or the residual");
  }
  return be.linear_layernorm(a);
}

}  // namespace embd::ops
