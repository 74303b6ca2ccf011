// Tensor descriptions shared by every layer.
//
// HostTensor: a read-only view of host memory (e.g. a memory-mapped safetensors entry); it does
// not own its bytes. Mat: a 2-D row-major matrix on some device with a row stride (ld, in
// elements), the shape every activation in an encoder has ([tokens, features]). Neither owns
// memory; owners are safetensors files (host) and backends (device).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace embd {

struct HostTensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<std::int64_t> shape;
  const void* data = nullptr;

  std::int64_t numel() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
  std::size_t bytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype); }
  std::string shape_string() const {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
  }
};

struct Mat {
  void* data = nullptr;
  DType dtype = DType::kF32;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t ld = 0;  // elements between row starts, >= cols

  static Mat of(void* data, DType dtype, std::int64_t rows, std::int64_t cols) {
    return Mat{data, dtype, rows, cols, cols};
  }
  // Columns [first, first + count) of every row, sharing the storage.
  Mat columns(std::int64_t first, std::int64_t count) const {
    return Mat{static_cast<char*>(data) + first * static_cast<std::int64_t>(dtype_size(dtype)),
               dtype, rows, count, ld};
  }
  // Rows [first, first + count).
  Mat row_range(std::int64_t first, std::int64_t count) const {
    return Mat{static_cast<char*>(data) + first * ld * static_cast<std::int64_t>(dtype_size(dtype)),
               dtype, count, cols, ld};
  }
  std::size_t bytes() const { return static_cast<std::size_t>(rows * ld) * dtype_size(dtype); }
};

}  // namespace embd
