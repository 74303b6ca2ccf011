#include <cmath>
#include <string>

#include "ops/ops.h"
#include "ops/validate.h"

namespace embd::ops {

Status attention(Backend& be, const backend::AttentionArgs& a) {
  EMBD_TRY(detail::check_supported(be, backend::Op::kAttention, a.qkv.dtype));
  if (a.num_heads <= 0 || a.head_dim <= 0) {
    return invalid_argument("attention: needs positive heads and head_dim");
  }
  const std::int64_t hidden = static_cast<std::int64_t>(a.num_heads) * a.head_dim;
  EMBD_TRY(detail::check_shape("attention", "qkv", a.qkv, a.qkv.rows, 3 * hidden));
  EMBD_TRY(detail::check_shape("attention", "output", a.out, a.qkv.rows, hidden));
  EMBD_TRY(detail::check_dtype("attention", "output", a.out, a.qkv.dtype));
  if (!std::isfinite(a.scale)) return invalid_argument("attention: scale is not finite");
  if (a.relative_bias != nullptr) {
    if (a.alibi_slopes != nullptr) {
      return invalid_argument("attention: ALiBi slopes and a relative-position table are exclusive");
    }
    if (a.relative_reach < 1 || a.relative_reach > backend::kMaxRelativeReach) {
      return invalid_argument("attention: relative_reach " + std::to_string(a.relative_reach) + " (expected 1.." +
                              std::to_string(backend::kMaxRelativeReach) + ")");
    }
  }
  if (a.batch <= 0) return invalid_argument("attention: empty batch");
  if (!a.cu_seqlens) return invalid_argument("attention: missing device sequence offsets");
  EMBD_TRY(detail::check_offsets(a.cu_seqlens_host, a.batch, a.qkv.rows, a.max_seqlen, "attention"));
  return be.attention(a);
}

}  // namespace embd::ops
