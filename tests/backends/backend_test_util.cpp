#include "backends/backend_test_util.h"

#include <cmath>
#include <cstring>

#include "backends/registry.h"

namespace embd::testing {

void BackendOpTest::SetUp() {
  const OpParam& p = GetParam();
  if (p.device.rfind("cuda", 0) == 0 && backend::cuda_device_count() == 0) {
    GTEST_SKIP() << "no CUDA GPU visible"
                 << (backend::cuda_compiled_in() ? "" : " (this build has no CUDA backend)");
  }
  auto created = backend::create_backends(p.device, backend::BackendOptions{});
  ASSERT_TRUE(created.ok()) << created.status().to_string();
  ASSERT_EQ(created.value().size(), 1u);
  backend_ = std::move(created.value()[0]);
}

std::vector<float> BackendOpTest::random(std::size_t n, float lo, float hi) {
  return random_as(n, lo, hi, dtype());
}

std::vector<float> BackendOpTest::random_as(std::size_t n, float lo, float hi, DType t) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng_);
  return round_to(v, t);
}

DevMat BackendOpTest::make_mat(std::int64_t rows, std::int64_t cols, std::int64_t ld,
                               const std::vector<float>& values, DType t) {
  const std::size_t es = dtype_size(t);
  std::vector<std::uint8_t> host(static_cast<std::size_t>(std::max<std::int64_t>(rows * ld, 1)) * es,
                                 0xFF);
  if (!values.empty()) {
    for (std::int64_t r = 0; r < rows; ++r) {
      convert(values.data() + r * cols, DType::kF32, host.data() + r * ld * es, t,
              static_cast<std::size_t>(cols));
    }
  }
  DevMat m;
  auto mem = backend_->allocate(host.size());
  EXPECT_TRUE(mem.ok()) << mem.status().to_string();
  if (!mem.ok()) return m;
  m.mem = std::move(mem.value());
  EXPECT_TRUE(backend_->upload(m.mem.get(), host.data(), host.size()).ok());
  m.mat = Mat{m.mem.get(), t, rows, cols, ld};
  return m;
}

backend::DeviceMemory BackendOpTest::upload_bytes(const void* data, std::size_t bytes) {
  auto mem = backend_->allocate(std::max<std::size_t>(bytes, 1));
  EXPECT_TRUE(mem.ok()) << mem.status().to_string();
  if (!mem.ok()) return {};
  if (bytes) {
    EXPECT_TRUE(backend_->upload(mem.value().get(), data, bytes).ok());
  }
  return std::move(mem.value());
}

std::vector<float> BackendOpTest::download(const Mat& m, const char* what) {
  EXPECT_TRUE(backend_->synchronize().ok());
  const std::size_t es = dtype_size(m.dtype);
  std::vector<std::uint8_t> host(static_cast<std::size_t>(m.rows * m.ld) * es);
  EXPECT_TRUE(backend_->download(host.data(), m.data, host.size()).ok());
  std::vector<float> out(static_cast<std::size_t>(m.rows * m.cols));
  std::int64_t unwritten = 0, clobbered = 0;
  for (std::int64_t r = 0; r < m.rows; ++r) {
    convert(host.data() + r * m.ld * es, m.dtype, out.data() + r * m.cols, DType::kF32,
            static_cast<std::size_t>(m.cols));
    for (std::int64_t c = 0; c < m.cols; ++c) unwritten += std::isnan(out[r * m.cols + c]) ? 1 : 0;
    for (std::size_t b = static_cast<std::size_t>(m.cols) * es; b < static_cast<std::size_t>(m.ld) * es; ++b) {
      clobbered += host[r * m.ld * es + b] != 0xFF ? 1 : 0;
    }
  }
  EXPECT_EQ(unwritten, 0) << what << ": elements left unwritten (still poison) or NaN";
  EXPECT_EQ(clobbered, 0) << what << ": bytes written outside the columns (row stride ignored?)";
  return out;
}

std::vector<float> BackendOpTest::download_f32(const void* device, std::size_t count) {
  EXPECT_TRUE(backend_->synchronize().ok());
  std::vector<float> out(count);
  EXPECT_TRUE(backend_->download(out.data(), device, count * sizeof(float)).ok());
  return out;
}

#ifdef EMBD_HAVE_CUDA
std::unique_ptr<backend::Backend> BackendOpTest::make_cuda_backend(const backend::cuda::CudaBackendOptions& options) {
  const std::string& device = GetParam().device;
  EXPECT_EQ(device.rfind("cuda:", 0), 0u) << "make_cuda_backend on " << device;
  if (device.rfind("cuda:", 0) != 0) return nullptr;
  auto made = backend::cuda::make_cuda_backend(std::stoi(device.substr(5)), options);
  EXPECT_TRUE(made.ok()) << made.status().to_string();
  if (!made.ok()) return nullptr;
  return std::move(made.value());
}
#endif

std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

double rel_l2(const std::vector<float>& got, const std::vector<double>& want) {
  double num = 0.0, den = 0.0;
  for (std::size_t i = 0; i < want.size() && i < got.size(); ++i) {
    const double d = static_cast<double>(got[i]) - want[i];
    num += d * d;
    den += want[i] * want[i];
  }
  if (got.size() != want.size() || std::isnan(num)) return INFINITY;
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

double tolerance(DType t) {
  switch (t) {
    case DType::kF32: return 1e-5;
    case DType::kF16: return 2e-3;
    case DType::kBF16: return 2e-2;
  }
  return 0.0;
}

std::vector<float> round_to(const std::vector<float>& v, DType t) {
  if (t == DType::kF32) return v;
  std::vector<std::uint16_t> half(v.size());
  std::vector<float> out(v.size());
  convert(v.data(), DType::kF32, half.data(), t, v.size());
  convert(half.data(), t, out.data(), DType::kF32, v.size());
  return out;
}

namespace {

std::string param_name(const ::testing::TestParamInfo<OpParam>& info) {
  std::string dev;
  for (char c : info.param.device) dev += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return dev + "_" + std::string(dtype_name(info.param.dtype));
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Cpu, BackendOpTest,
                         ::testing::Values(OpParam{"cpu", DType::kF32}, OpParam{"cpu", DType::kF16},
                                           OpParam{"cpu", DType::kBF16}),
                         param_name);
INSTANTIATE_TEST_SUITE_P(Cuda, BackendOpTest,
                         ::testing::Values(OpParam{"cuda:0", DType::kF32},
                                           OpParam{"cuda:0", DType::kF16},
                                           OpParam{"cuda:0", DType::kBF16}),
                         param_name);

}  // namespace embd::testing
