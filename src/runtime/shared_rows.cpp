#include "runtime/shared_rows.h"

#include <utility>

#include "core/status.h"

namespace embd::runtime {

void SharedRows::reserve(std::size_t dim) {
  std::call_once(sized_, [&] {
    dim_ = dim;
    data_.resize(rows_ * dim);
  });
}

std::span<float> SharedRows::row(std::size_t index, std::size_t dim) {
  reserve(dim);
  EMBD_CHECK(dim == dim_ && index < rows_);
  return std::span<float>(data_).subspan(index * dim, dim);
}

std::vector<float> SharedRows::take() { return std::move(data_); }

}  // namespace embd::runtime
