// SharedRows: one output buffer for a request queued in parts (PartsJoin). Every part writes its
// rows straight into it at the part's row offset, so joining the parts copies nothing: after a
// large request's last batch, only that batch's rows stand between the device and the caller.
//
// The buffer is allocated by reserve() or else by the first row written. The Engine reserves it
// on the caller's thread once every part is queued (before that, the thread is on the critical
// path), while the device runs the first part. Sized by the executor thread at the first part's
// delivery, its 1 MB of page faults came while the pool tokenised the rest on every core, and
// held up the next batch by 0.5-0.8 ms (H200, session 12).
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
  // Sizes the buffer to rows() x dim now, if no call has sized it yet.
  void reserve(std::size_t dim);
  // Row `index`, `dim` floats wide. The first call sizes the buffer to rows() x dim unless
  // reserve() did; every call must pass the dim of that sizing.
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
