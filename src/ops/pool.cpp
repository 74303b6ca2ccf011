#include <algorithm>

#include "ops/ops.h"
#include "ops/validate.h"

namespace embd::ops {

Status pool(Backend& be, const backend::PoolArgs& a) {
  EMBD_TRY(detail::check_supported(be, backend::Op::kPool, a.hidden.dtype));
  EMBD_TRY(detail::check_mat("pool", "hidden", a.hidden));
  if (a.batch <= 0) return invalid_argument("pool: empty batch");
  if (!a.out || !a.cu_seqlens) return invalid_argument("pool: missing output or offsets");
  std::int64_t longest = 0;
  for (std::int64_t b = 0; b < a.batch && a.cu_seqlens_host; ++b) {
    longest = std::max<std::int64_t>(longest, a.cu_seqlens_host[b + 1] - a.cu_seqlens_host[b]);
  }
  EMBD_TRY(detail::check_offsets(a.cu_seqlens_host, a.batch, a.hidden.rows, longest, "pool"));
  return be.pool(a);
}

}  // namespace embd::ops
