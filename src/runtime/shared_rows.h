// SharedRows: one output buffer for a request queued in parts (PartsJoin). Every part writes its
// rows straight into it at the part's row offset, so joining the parts copies nothing: after a
// large request's last batch, only that batch's rows stand between the device and the caller.
//
// The buffer is allocated by the first row written, on the executor thread that delivers the
// first batch, while the device runs the next: not on the caller's thread, which is on the
// critical path until the request's first part is queued.
//
// Thread-safety: row() may be called from any thread, for distinct rows concurrently. take() is
// called once, after every row was written and that was published to the caller of take() (the
// parts' completions reach PartsJoin under its mutex).
#pragma once

#include <cstddef>
#include <mutex>
#include <span>
#include <vector>

namespace embd::runtime {

class SharedRows {
 public:
  explicit SharedRows(std::size_t rows) : rows_(rows) {}
  SharedRows(const SharedRows&) = delete;
  SharedRows& operator=(const SharedRows&) = delete;

  std::size_t rows() const { return rows_; }
  // Row `index`, `dim` floats wide. The first call sizes the buffer to rows() x dim; every call
  // must pass the same dim.
  std::span<float> row(std::size_t index, std::size_t dim);
  // The whole buffer, moved out: empty if no row was ever written.
  std::vector<float> take();

 private:
  const std::size_t rows_;
  std::once_flag sized_;
  std::size_t dim_ = 0;      // written once, under sized_
  std::vector<float> data_;  // sized once, under sized_; rows written by their owners
};

}  // namespace embd::runtime
