// The cross-backend op test harness: one fixture parameterized over {backend, dtype}. CPU
// instances always run; CUDA instances are always instantiated and GTEST_SKIP() with a reason
// when no GPU is visible. Helpers upload host data (rounded to the dtype), poison outputs before
// each run (all bytes 0xFF = NaN in every dtype) and download results as F32. In CUDA builds
// (EMBD_HAVE_CUDA) a test may also run on CUDA backends made with other options.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "backends/backend.h"
#ifdef EMBD_HAVE_CUDA
#include "backends/cuda/cuda_backend.h"
#endif

namespace embd::testing {

struct OpParam {
  std::string device;
  DType dtype;
};
// Readable test names in CTest ("cpu/f16" instead of the parameter's bytes).
inline void PrintTo(const OpParam& p, std::ostream* os) { *os << p.device << "/" << dtype_name(p.dtype); }

// A matrix on the backend plus its storage.
struct DevMat {
  backend::DeviceMemory mem;
  Mat mat;
};

class BackendOpTest : public ::testing::TestWithParam<OpParam> {
 protected:
  void SetUp() override;

  DType dtype() const { return GetParam().dtype; }
  bool supported(backend::Op op) const { return backend_->supports(op, dtype()); }

  // Uniform values in [lo, hi), rounded to `t` (default: the test dtype) so that the reference
  // sees exactly what the kernel sees.
  std::vector<float> random(std::size_t n, float lo, float hi);
  std::vector<float> random_as(std::size_t n, float lo, float hi, DType t);

  // A rows x cols matrix with row stride ld; `values` (dense rows x cols, may be empty) fill it,
  // every other byte (padding columns, or all of it) is poison.
  DevMat make_mat(std::int64_t rows, std::int64_t cols, std::int64_t ld,
                  const std::vector<float>& values, DType t);
  DevMat make_mat(std::int64_t rows, std::int64_t cols, std::int64_t ld,
                  const std::vector<float>& values) {
    return make_mat(rows, cols, ld, values, dtype());
  }
  // Raw device copy of host bytes (ids, cu_seqlens, F32 params).
  backend::DeviceMemory upload_bytes(const void* data, std::size_t bytes);
  template <typename T>
  backend::DeviceMemory upload_vec(const std::vector<T>& v) {
    return upload_bytes(v.data(), v.size() * sizeof(T));
  }

  // Downloads the rows x cols part of m as F32 and checks that every element was written (not
  // poison) and that padding columns were not (still poison).
  std::vector<float> download(const Mat& m, const char* what);
  std::vector<float> download_f32(const void* device, std::size_t count);

#ifdef EMBD_HAVE_CUDA
  // Another CUDA backend on this instance's GPU, made with `options` (paths the default options
  // leave out, e.g. a fused kernel on short batches); null, with a test failure, if it cannot be
  // made. Only on a CUDA instance.
  std::unique_ptr<backend::Backend> make_cuda_backend(const backend::cuda::CudaBackendOptions& options);
#endif
  // Runs body() with `other` in place of backend_, so that the helpers above allocate, upload and
  // download there; everything body() makes on it must be gone when it returns.
  template <typename Body>
  void with_backend(std::unique_ptr<backend::Backend>& other, Body&& body) {
    std::swap(backend_, other);
    body();
    std::swap(backend_, other);
  }

  std::unique_ptr<backend::Backend> backend_;
  std::mt19937 rng_{12345};
};

std::vector<double> to_double(const std::vector<float>& v);
// ||got - want|| / max(||want||, tiny).
double rel_l2(const std::vector<float>& got, const std::vector<double>& want);
// Relative-L2 tolerance per dtype: measures kernel error, inputs being already rounded.
double tolerance(DType t);
// Rounds values to `t` and back.
std::vector<float> round_to(const std::vector<float>& v, DType t);

}  // namespace embd::testing

// Skips the current test when the backend does not implement `op` in the test dtype.
#define EMBD_REQUIRE_OP(op)                                                                  \
  do {                                                                                       \
    if (!supported(op)) {                                                                    \
      GTEST_SKIP() << backend_->name() << " does not support " << backend::op_name(op)     \
                   << " in " << dtype_name(dtype());                                        \
    }                                                                                        \
  } while (0)
