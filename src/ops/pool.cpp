#include <limits>

#include "ops/ops.h"
#include "ops/validate.h"

namespace embd::ops {

Status pool(Backend& be, const backend::PoolArgs& a) {
  EMBD_TRY(detail::check_supported(be, backend::Op::kPool, a.hidden.dtype));
  EMBD_TRY(detail::check_mat("pool", "hidden", a.hidden));
  if (a.batch <= 0) return invalid_argument("pool: empty batch");
  if (!a.out || !a.cu_seqlens) return invalid_argument("pool: missing output or offsets");
  // Pooling has no sequence-length limit: only the offsets themselves are checked.
  EMBD_TRY(detail::check_offsets(a.cu_seqlens_host, a.batch, a.hidden.rows,
                                 std::numeric_limits<std::int64_t>::max(), "pool"));
  return be.pool(a);
}

}  // namespace embd::ops
