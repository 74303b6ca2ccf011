// gpu_ops_bench: times the CUDA backend's Linear (cuBLASLt) and varlen attention at
// JinaBERT-small shapes, plus the device's ceilings (a large GEMM and a device-to-device copy),
// with CUDA events on the backend's stream (warm-up, then the median of kIters runs). Every
// timed op is also checked: outputs are poisoned (NaN) first and must be fully written, Linear
// is compared on sampled rows with a double-precision CPU product, attention with an FP32 GPU
// reference (itself checked against double on the CPU), so numbers from a wrong kernel are
// flagged "FAIL" and the exit code is 1. Linear rows also name the path the backend took (the
// cuBLASLt epilogue, the bias dtype, any extra epilogue kernel). Without a GPU it prints
// "no CUDA device: skipped". The gated MLP projection (fused Hopper kernel, and cuBLASLt + GLU
// kernel on a second backend) is timed first, then the Linear + residual LayerNorm (fused Hopper
// kernel, and cuBLASLt + add_layernorm on a second backend, the two outputs compared);
// `gpu_ops_bench --gated-only` / `--layernorm-only` / `--attention-only` run only the one (after
// the peak GEMM rows). Attention rows: the default kernel (wgmma on Hopper), the mma.sync one,
// the same without ALiBi tile skipping, and the portable one.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cuda/cuda_backend.h"
#include "gpu_bench_kernels.h"
#include "ops/ops.h"

namespace {

using embd::DType;
using embd::Mat;
using embd::backend::Backend;
using embd::backend::DeviceMemory;

constexpr int kWarmup = 3;
constexpr int kIters = 20;

struct Row {
  std::string op, dtype, shape;
  double ms = 0, rate = 0;
  const char* unit = "";
  std::string check;
  std::string path;  // linear: how the CUDA backend ran it (cuBLASLt epilogue, extra kernel)
};
std::vector<Row> g_rows;
int g_failures = 0;

void cuda_ok(cudaError_t err, const char* what, int line) {
  if (err == cudaSuccess) return;
  std::fprintf(stderr, "gpu_ops_bench:%d: %s: %s\n", line, what, cudaGetErrorString(err));
  std::exit(2);
}
#define CK(expr) cuda_ok((expr), #expr, __LINE__)

void status_ok(const embd::Status& s, const char* what) {
  if (s.ok()) return;
  std::fprintf(stderr, "gpu_ops_bench: %s: %s\n", what, s.to_string().c_str());
  std::exit(2);
}

template <typename T>
T value_or_die(embd::Result<T> r, const char* what) {
  status_ok(r.status(), what);
  return std::move(r).value();
}

int elem(DType t) { return static_cast<int>(t); }
std::string name_of(DType t) { return std::string(embd::dtype_name(t)); }

// Median time in ms of `launch` (which enqueues on `stream`), timed with CUDA events.
template <typename F>
double time_ms(cudaStream_t stream, F&& launch) {
  for (int i = 0; i < kWarmup; ++i) launch();
  CK(cudaStreamSynchronize(stream));
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  std::vector<double> times;
  for (int i = 0; i < kIters; ++i) {
    CK(cudaEventRecord(a, stream));
    launch();
    CK(cudaEventRecord(b, stream));
    CK(cudaEventSynchronize(b));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, a, b));
    times.push_back(ms);
  }
  CK(cudaEventDestroy(a));
  CK(cudaEventDestroy(b));
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

unsigned long long nonfinite(Backend& be, cudaStream_t s, const void* p, DType t, long long rows, long long cols) {
  DeviceMemory count = value_or_die(be.allocate(sizeof(unsigned long long)), "allocate counter");
  CK(cudaMemsetAsync(count.get(), 0, sizeof(unsigned long long), s));
  CK(embd::bench::count_nonfinite(p, elem(t), rows, cols, cols, count.as<unsigned long long>(), s));
  unsigned long long host = 0;
  status_ok(be.download(&host, count.get(), sizeof(host)), "download counter");
  return host;
}

std::vector<float> to_f32(const std::vector<std::uint8_t>& raw, DType t) {
  std::vector<float> out(raw.size() / embd::dtype_size(t));
  embd::convert(raw.data(), t, out.data(), DType::kF32, out.size());
  return out;
}

std::string verdict(double rel, double tol, unsigned long long bad) {
  char buf[96];
  const bool ok = bad == 0 && std::isfinite(rel) && rel <= tol;
  std::snprintf(buf, sizeof(buf), "%s rel=%.1e%s", ok ? "ok" : "FAIL", rel,
                bad ? (" unwritten/nonfinite=" + std::to_string(bad)).c_str() : "");
  if (!ok) ++g_failures;
  return buf;
}

double linear_tolerance(DType t) { return t == DType::kF32 ? 1e-5 : t == DType::kF16 ? 2e-3 : 1e-2; }

// Relative L2 error of 64 sampled rows x 16 columns of y [m, n] against `reference(x_row, col)`
// in double, x [m, k] read back as the device holds it (dtype-rounded).
template <typename Reference>
double sampled_error(Backend& be, DType t, const DeviceMemory& x, const DeviceMemory& y, long long m, long long k,
                     long long n, std::uint32_t seed, Reference reference) {
  std::mt19937 rng(seed);
  const std::size_t es = embd::dtype_size(t);
  double err2 = 0, ref2 = 0;
  std::vector<std::uint8_t> xr(k * es), yr(n * es);
  for (int s = 0; s < 64; ++s) {
    const long long r = std::uniform_int_distribution<long long>(0, m - 1)(rng);
    status_ok(be.download(xr.data(), x.as<std::uint8_t>() + r * k * es, xr.size()), "download x row");
    status_ok(be.download(yr.data(), y.as<std::uint8_t>() + r * n * es, yr.size()), "download y row");
    const std::vector<float> xf = to_f32(xr, t), yf = to_f32(yr, t);
    for (int c = 0; c < 16; ++c) {
      const long long col = std::uniform_int_distribution<long long>(0, n - 1)(rng);
      const double ref = reference(xf, col);
      err2 += (yf[col] - ref) * (yf[col] - ref);
      ref2 += ref * ref;
    }
  }
  return std::sqrt(err2 / std::max(ref2, 1e-300));
}

double gelu_erf(double v) { return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); }

// y = act(x W^T + b) against a double-precision product of the same inputs; act is none or the
// exact (erf) GELU.
double linear_sample_error(Backend& be, DType t, const DeviceMemory& x, const DeviceMemory& y, long long m,
                           long long k, long long n, const std::vector<float>& w, const std::vector<float>& bias,
                           bool gelu) {
  return sampled_error(be, t, x, y, m, k, n, 1234, [&](const std::vector<float>& xf, long long col) {
    double ref = bias.empty() ? 0.0 : bias[col];
    for (long long i = 0; i < k; ++i) ref += static_cast<double>(xf[i]) * w[col * k + i];
    return gelu ? gelu_erf(ref) : ref;
  });
}

// Host tensor data as F16 (the stored dtype of JinaBERT checkpoints), and its value after
// conversion to the compute dtype (what the GPU multiplies).
void random_f16(std::size_t n, float bound, std::uint32_t seed, DType compute, std::vector<std::uint16_t>& f16,
                std::vector<float>& rounded) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-bound, bound);
  f16.resize(n);
  for (auto& v : f16) v = embd::f32_to_f16(dist(rng));
  std::vector<std::uint8_t> tmp(n * embd::dtype_size(compute));
  embd::convert(f16.data(), DType::kF16, tmp.data(), compute, n);
  rounded.resize(n);
  embd::convert(tmp.data(), compute, rounded.data(), DType::kF32, n);
}

void bench_linear(Backend& be, cudaStream_t s, DType t, long long m, long long k, long long n, bool with_bias,
                  bool gelu, const char* op) {
  std::vector<std::uint16_t> w16, b16;
  std::vector<float> w, b;
  random_f16(static_cast<std::size_t>(n * k), 1.0f / std::sqrt(static_cast<float>(k)), 7, t, w16, w);
  embd::HostTensor wt{"bench.weight", DType::kF16, {n, k}, w16.data()};
  embd::HostTensor bt;
  if (with_bias) {
    random_f16(static_cast<std::size_t>(n), 0.5f, 8, DType::kF32, b16, b);
    bt = embd::HostTensor{"bench.bias", DType::kF16, {n}, b16.data()};
  }
  auto weight = value_or_die(be.prepare_linear(wt, with_bias ? &bt : nullptr, t), "prepare_linear");
  const std::size_t es = embd::dtype_size(t);
  DeviceMemory x = value_or_die(be.allocate(m * k * es), "allocate x");
  DeviceMemory y = value_or_die(be.allocate(m * n * es), "allocate y");
  CK(embd::bench::fill_uniform(x.get(), elem(t), m * k, 11, -1.0f, 1.0f, s));
  CK(cudaMemsetAsync(y.get(), 0xFF, m * n * es, s));  // NaN in every dtype
  embd::backend::LinearArgs args;
  args.weight = weight.get();
  args.x = Mat::of(x.get(), t, m, k);
  args.y = Mat::of(y.get(), t, m, n);
  args.activation = gelu ? embd::backend::Activation::kGeluErf : embd::backend::Activation::kNone;
  status_ok(be.linear(args), "linear");
  const std::string path = embd::backend::cuda::linear_path(be);
  const unsigned long long bad = nonfinite(be, s, y.get(), t, m, n);
  const double rel = linear_sample_error(be, t, x, y, m, k, n, w, b, gelu);
  const double ms = time_ms(s, [&] { status_ok(be.linear(args), "linear"); });
  char shape[96];
  std::snprintf(shape, sizeof(shape), "M=%lld %lld->%lld%s%s", m, k, n, with_bias ? " +bias" : "",
                gelu ? " +gelu" : "");
  g_rows.push_back({op, name_of(t), shape, ms, 2.0 * m * n * k / (ms * 1e-3) / 1e12, "TFLOP/s",
                    verdict(rel, linear_tolerance(t), bad), path});
}

// The gated MLP input projection + GEGLU (out [m, inner] from x [m, k]): the fused Hopper kernel
// when `be` has it, else (or on `unfused`) cuBLASLt into [m, 2 inner] and the GLU kernel. 64
// sampled rows x 16 outputs are checked against a double product of the same rounded inputs.
void bench_gated(Backend& be, cudaStream_t s, DType t, long long m, long long k, long long inner, const char* op) {
  const long long n = 2 * inner;
  std::vector<std::uint16_t> w16;
  std::vector<float> w;
  random_f16(static_cast<std::size_t>(n * k), 1.0f / std::sqrt(static_cast<float>(k)), 9, t, w16, w);
  embd::HostTensor wt{"bench.gated.weight", DType::kF16, {n, k}, w16.data()};
  auto weight = value_or_die(be.prepare_gated_linear(wt, true, t), "prepare_gated_linear");
  const std::size_t es = embd::dtype_size(t);
  const bool fused = be.fuses_gated_linear(*weight, embd::backend::Activation::kGeluErf);
  DeviceMemory x = value_or_die(be.allocate(m * k * es), "allocate x");
  DeviceMemory scratch;  // the unfused path's [m, 2 inner] projection
  if (!fused) scratch = value_or_die(be.allocate(m * n * es), "allocate scratch");
  DeviceMemory y = value_or_die(be.allocate(m * inner * es), "allocate y");
  CK(embd::bench::fill_uniform(x.get(), elem(t), m * k, 13, -1.0f, 1.0f, s));
  CK(cudaMemsetAsync(y.get(), 0xFF, m * inner * es, s));
  const embd::backend::GatedLinearArgs args{weight.get(), Mat::of(x.get(), t, m, k), Mat::of(y.get(), t, m, inner),
                                            embd::backend::Activation::kGeluErf,
                                            fused ? Mat{} : Mat::of(scratch.get(), t, m, n)};
  auto run = [&] { status_ok(embd::ops::gated_linear(be, args), "gated_linear"); };
  run();
  const unsigned long long bad = nonfinite(be, s, y.get(), t, m, inner);
  const double rel = sampled_error(be, t, x, y, m, k, inner, 4321, [&](const std::vector<float>& xf, long long col) {
    double g = 0, u = 0;
    for (long long i = 0; i < k; ++i) {
      g += static_cast<double>(xf[i]) * w[col * k + i];
      u += static_cast<double>(xf[i]) * w[(inner + col) * k + i];
    }
    return gelu_erf(g) * u;
  });
  const double ms = time_ms(s, run);
  char shape[96];
  std::snprintf(shape, sizeof(shape), "M=%lld %lld->2x%lld geglu", m, k, inner);
  g_rows.push_back({op, name_of(t), shape, ms, 2.0 * m * n * k / (ms * 1e-3) / 1e12, "TFLOP/s",
                    verdict(rel, linear_tolerance(t), bad), fused ? "fused wgmma kernel" : "cuBLASLt + glu kernel"});
}

// A Linear layer of 512 outputs and the residual LayerNorm after it as the models call it
// (ops::linear_layernorm with scratch; bias; out aliasing the residual): on `fused` (the Hopper
// kernel at every batch size, where the device has it) and on `unfused` (cuBLASLt into the
// scratch, then add_layernorm), from the same inputs. Each output is checked on 64 sampled rows
// against a double-precision product and LayerNorm of the same rounded inputs, and the two against
// each other: the fused row's check ends with the largest absolute difference, which fails beyond
// 4 units in the last place of the largest output (the unfused path rounds the projection once
// more, in the scratch). Timed in place, as the models run it: each launch reads the residual that
// the previous one wrote.
void bench_linear_layernorm(Backend& fused, Backend& unfused, DType t, long long m, long long k) {
  constexpr long long n = 512;
  constexpr float kEps = 1e-12f;
  std::vector<std::uint16_t> w16, b16;
  std::vector<float> w, b;
  random_f16(static_cast<std::size_t>(n * k), 1.0f / std::sqrt(static_cast<float>(k)), 17, t, w16, w);
  random_f16(static_cast<std::size_t>(n), 0.5f, 18, DType::kF32, b16, b);
  std::vector<float> gamma(n), beta(n);
  std::mt19937 rng(19);
  for (auto& v : gamma) v = std::uniform_real_distribution<float>(0.5f, 1.5f)(rng);
  for (auto& v : beta) v = std::uniform_real_distribution<float>(-0.5f, 0.5f)(rng);
  const embd::HostTensor wt{"bench.ln.weight", DType::kF16, {n, k}, w16.data()};
  const embd::HostTensor bt{"bench.ln.bias", DType::kF16, {n}, b16.data()};
  auto wf = value_or_die(fused.prepare_linear(wt, &bt, t), "prepare_linear (fused)");
  auto wu = value_or_die(unfused.prepare_linear(wt, &bt, t), "prepare_linear (unfused)");
  const bool is_fused = fused.fuses_linear_layernorm(*wf);
  if (unfused.fuses_linear_layernorm(*wu)) {
    std::fprintf(stderr, "gpu_ops_bench: the unfused backend fuses linear_layernorm\n");
    std::exit(2);
  }
  auto* sf = static_cast<cudaStream_t>(embd::backend::cuda::native_stream(fused));
  auto* su = static_cast<cudaStream_t>(embd::backend::cuda::native_stream(unfused));
  const std::size_t es = embd::dtype_size(t);
  // All on `fused`'s device memory; `unfused` (same GPU) reads it once `fused` is synchronized.
  DeviceMemory x = value_or_die(fused.allocate(m * k * es), "allocate x");
  DeviceMemory residual = value_or_die(fused.allocate(m * n * es), "allocate residual");
  DeviceMemory out_f = value_or_die(fused.allocate(m * n * es), "allocate out (fused)");
  DeviceMemory out_u = value_or_die(fused.allocate(m * n * es), "allocate out (unfused)");
  DeviceMemory scratch_f = value_or_die(fused.allocate(m * n * es), "allocate scratch (fused)");
  DeviceMemory scratch_u = value_or_die(fused.allocate(m * n * es), "allocate scratch (unfused)");
  DeviceMemory params = value_or_die(fused.allocate(2 * n * sizeof(float)), "allocate gamma, beta");
  CK(embd::bench::fill_uniform(x.get(), elem(t), m * k, 23, -1.0f, 1.0f, sf));
  // A residual stream of mean 0.5: the LayerNorm's input has a mean of its own.
  CK(embd::bench::fill_uniform(residual.get(), elem(t), m * n, 24, -1.5f, 2.5f, sf));
  status_ok(fused.upload(params.get(), gamma.data(), n * sizeof(float)), "upload gamma");
  status_ok(fused.upload(params.as<float>() + n, beta.data(), n * sizeof(float)), "upload beta");
  // out starts as a copy of the residual, then is overwritten (out aliases the residual).
  CK(cudaMemcpyAsync(out_f.get(), residual.get(), m * n * es, cudaMemcpyDeviceToDevice, sf));
  CK(cudaMemcpyAsync(out_u.get(), residual.get(), m * n * es, cudaMemcpyDeviceToDevice, sf));
  status_ok(fused.synchronize(), "synchronize");
  const auto args = [&](const embd::backend::LinearWeight& wt_dev, DeviceMemory& out, DeviceMemory& scratch) {
    embd::backend::LinearLayerNormArgs a;
    a.weight = &wt_dev;
    a.x = Mat::of(x.get(), t, m, k);
    a.residual = Mat::of(out.get(), t, m, n);
    a.gamma = params.as<float>();
    a.beta = params.as<float>() + n;
    a.eps = kEps;
    a.out = a.residual;
    a.scratch = Mat::of(scratch.get(), t, m, n);
    return a;
  };
  const embd::backend::LinearLayerNormArgs af = args(*wf, out_f, scratch_f), au = args(*wu, out_u, scratch_u);
  auto run_f = [&] { status_ok(embd::ops::linear_layernorm(fused, af), "linear_layernorm (fused)"); };
  auto run_u = [&] { status_ok(embd::ops::linear_layernorm(unfused, au), "linear_layernorm (unfused)"); };
  run_f();
  run_u();
  status_ok(unfused.synchronize(), "synchronize");
  const std::string unfused_path = "cuBLASLt + add_layernorm (" + embd::backend::cuda::linear_path(unfused) + ")";
  const unsigned long long bad_f = nonfinite(fused, sf, out_f.get(), t, m, n);
  const unsigned long long bad_u = nonfinite(unfused, su, out_u.get(), t, m, n);

  // 64 sampled rows, all 512 columns, in double.
  std::mt19937 pick(4711);
  double err2_f = 0, err2_u = 0, ref2 = 0;
  std::vector<std::uint8_t> xr(k * es), rr(n * es), fr(n * es), ur(n * es);
  std::vector<double> v(n);
  for (int sample = 0; sample < 64; ++sample) {
    const long long r = std::uniform_int_distribution<long long>(0, m - 1)(pick);
    status_ok(fused.download(xr.data(), x.as<std::uint8_t>() + r * k * es, xr.size()), "download x row");
    status_ok(fused.download(rr.data(), residual.as<std::uint8_t>() + r * n * es, rr.size()), "download residual row");
    status_ok(fused.download(fr.data(), out_f.as<std::uint8_t>() + r * n * es, fr.size()), "download out row");
    status_ok(fused.download(ur.data(), out_u.as<std::uint8_t>() + r * n * es, ur.size()), "download out row");
    const std::vector<float> xf = to_f32(xr, t), rf = to_f32(rr, t), got_f = to_f32(fr, t), got_u = to_f32(ur, t);
    double mean = 0, var = 0;
    for (long long c = 0; c < n; ++c) {
      double acc = b[c];
      for (long long i = 0; i < k; ++i) acc += static_cast<double>(xf[i]) * w[c * k + i];
      v[c] = acc + rf[c];
      mean += v[c];
    }
    mean /= n;
    for (long long c = 0; c < n; ++c) var += (v[c] - mean) * (v[c] - mean);
    const double rstd = 1.0 / std::sqrt(var / n + kEps);
    for (long long c = 0; c < n; ++c) {
      const double ref = (v[c] - mean) * rstd * gamma[c] + beta[c];
      err2_f += (got_f[c] - ref) * (got_f[c] - ref);
      err2_u += (got_u[c] - ref) * (got_u[c] - ref);
      ref2 += ref * ref;
    }
  }
  const double rel_f = std::sqrt(err2_f / std::max(ref2, 1e-300)), rel_u = std::sqrt(err2_u / std::max(ref2, 1e-300));

  // The two outputs, whole.
  std::vector<std::uint8_t> all_f(m * n * es), all_u(m * n * es);
  status_ok(fused.download(all_f.data(), out_f.get(), all_f.size()), "download out (fused)");
  status_ok(fused.download(all_u.data(), out_u.get(), all_u.size()), "download out (unfused)");
  const std::vector<float> of = to_f32(all_f, t), ou = to_f32(all_u, t);
  double max_diff = 0, max_abs = 0;
  for (std::size_t i = 0; i < of.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(static_cast<double>(of[i]) - ou[i]));
    max_abs = std::max(max_abs, static_cast<double>(std::abs(ou[i])));
  }
  const int mantissa = t == DType::kBF16 ? 7 : 10;
  const double diff_tol = 4 * std::ldexp(1.0, std::ilogb(std::max(max_abs, 1e-30)) - mantissa);
  std::string check_f = verdict(rel_f, linear_tolerance(t), bad_f);
  char agree[64];
  std::snprintf(agree, sizeof(agree), " max|f-u|=%.1e%s", max_diff, max_diff <= diff_tol ? "" : " FAIL");
  if (!(max_diff <= diff_tol)) ++g_failures;
  check_f += agree;

  const double ms_f = time_ms(sf, run_f);
  const double ms_u = time_ms(su, run_u);
  char shape[96];
  std::snprintf(shape, sizeof(shape), "M=%lld %lld->%lld +bias+res+LN", m, k, n);
  const double flops = 2.0 * m * n * k;
  g_rows.push_back({"linear_layernorm", name_of(t), shape, ms_f, flops / (ms_f * 1e-3) / 1e12, "TFLOP/s", check_f,
                    is_fused ? "fused wgmma kernel" : unfused_path});
  g_rows.push_back({"linear_layernorm unfused", name_of(t), shape, ms_u, flops / (ms_u * 1e-3) / 1e12, "TFLOP/s",
                    verdict(rel_u, linear_tolerance(t), bad_u), unfused_path});
}

void bench_copy(Backend& be, cudaStream_t s) {
  const std::size_t bytes = std::size_t{1} << 30;
  DeviceMemory a = value_or_die(be.allocate(bytes), "allocate copy src");
  DeviceMemory b = value_or_die(be.allocate(bytes), "allocate copy dst");
  CK(embd::bench::fill_uniform(a.get(), 0, bytes / 4, 3, -1.0f, 1.0f, s));
  const double ms = time_ms(s, [&] { CK(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, s)); });
  std::vector<float> ha(1024), hb(1024);
  status_ok(be.download(ha.data(), a.as<std::uint8_t>() + bytes - 4096, 4096), "download");
  status_ok(be.download(hb.data(), b.as<std::uint8_t>() + bytes - 4096, 4096), "download");
  const bool same = std::memcmp(ha.data(), hb.data(), 4096) == 0;
  if (!same) ++g_failures;
  g_rows.push_back({"d2d copy", "-", "1 GiB", ms, 2.0 * bytes / (ms * 1e-3) / 1e9, "GB/s (r+w)",
                    same ? "ok" : "FAIL"});
}

constexpr int kHeads = 8;
constexpr int kHeadDim = 64;
constexpr long long kHidden = kHeads * kHeadDim;

double attention_tolerance(DType t) { return t == DType::kF32 ? 1e-4 : t == DType::kF16 ? 5e-3 : 2e-2; }

// Checks the FP32 GPU reference itself on 32 sampled (query, head) pairs in double on the CPU.
double reference_self_check(Backend& be, DType t, const DeviceMemory& qkv, const std::vector<int>& cu,
                            const std::vector<float>& ref, const std::vector<float>& slopes, float scale) {
  const long long tokens = cu.back();
  std::vector<std::uint8_t> raw(tokens * 3 * kHidden * embd::dtype_size(t));
  status_ok(be.download(raw.data(), qkv.get(), raw.size()), "download qkv");
  const std::vector<float> x = to_f32(raw, t);
  std::mt19937 rng(99);
  double err2 = 0, ref2 = 0;
  for (int s = 0; s < 32; ++s) {
    const int b = std::uniform_int_distribution<int>(0, static_cast<int>(cu.size()) - 2)(rng);
    const int len = cu[b + 1] - cu[b];
    const int i = std::uniform_int_distribution<int>(0, len - 1)(rng);
    const int h = std::uniform_int_distribution<int>(0, kHeads - 1)(rng);
    const float* q = &x[(cu[b] + i) * 3 * kHidden + h * kHeadDim];
    std::vector<double> sc(len), out(kHeadDim, 0.0);
    double mx = -1e300, sum = 0;
    for (int j = 0; j < len; ++j) {
      const float* kr = &x[(cu[b] + j) * 3 * kHidden + kHidden + h * kHeadDim];
      double d = 0;
      for (int e = 0; e < kHeadDim; ++e) d += static_cast<double>(q[e]) * kr[e];
      sc[j] = d * scale - static_cast<double>(slopes[h]) * std::abs(i - j);
      mx = std::max(mx, sc[j]);
    }
    for (int j = 0; j < len; ++j) {
      const double p = std::exp(sc[j] - mx);
      sum += p;
      const float* vr = &x[(cu[b] + j) * 3 * kHidden + 2 * kHidden + h * kHeadDim];
      for (int e = 0; e < kHeadDim; ++e) out[e] += p * vr[e];
    }
    for (int e = 0; e < kHeadDim; ++e) {
      const double r = out[e] / sum;
      const double g = ref[(cu[b] + i) * kHidden + h * kHeadDim + e];
      err2 += (g - r) * (g - r);
      ref2 += r * r;
    }
  }
  return std::sqrt(err2 / std::max(ref2, 1e-300));
}

double rel_error(const std::vector<float>& got, const std::vector<float>& ref) {
  double err2 = 0, ref2 = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    err2 += (static_cast<double>(got[i]) - ref[i]) * (static_cast<double>(got[i]) - ref[i]);
    ref2 += static_cast<double>(ref[i]) * ref[i];
  }
  return std::sqrt(err2 / std::max(ref2, 1e-300));
}

struct AttnCase {
  long long batch, len;
};

// fast: tensor-core kernel with ALiBi tile skipping (wgmma on Hopper); dense: the same without
// skipping; mma_sync: fast's kernel with mma.sync on Hopper too.
void bench_attention(Backend& fast, Backend& dense, Backend& portable, Backend& mma_sync, DType t, AttnCase c) {
  auto* s = static_cast<cudaStream_t>(embd::backend::cuda::native_stream(fast));
  const long long tokens = c.batch * c.len;
  const std::size_t es = embd::dtype_size(t);
  DeviceMemory qkv = value_or_die(fast.allocate(tokens * 3 * kHidden * es), "allocate qkv");
  DeviceMemory out = value_or_die(fast.allocate(tokens * kHidden * es), "allocate out");
  DeviceMemory ref = value_or_die(fast.allocate(tokens * kHidden * sizeof(float)), "allocate ref");
  std::vector<int> cu(c.batch + 1);
  for (long long b = 0; b <= c.batch; ++b) cu[b] = static_cast<int>(b * c.len);
  std::vector<float> slopes(kHeads);
  for (int h = 0; h < kHeads; ++h) slopes[h] = std::pow(2.0f, -8.0f * (h + 1) / kHeads);  // JinaBERT ALiBi
  DeviceMemory cu_dev = value_or_die(fast.allocate(cu.size() * 4), "allocate cu_seqlens");
  DeviceMemory slopes_dev = value_or_die(fast.allocate(kHeads * 4), "allocate slopes");
  status_ok(fast.upload(cu_dev.get(), cu.data(), cu.size() * 4), "upload cu_seqlens");
  status_ok(fast.upload(slopes_dev.get(), slopes.data(), kHeads * 4), "upload slopes");
  CK(embd::bench::fill_uniform(qkv.get(), elem(t), tokens * 3 * kHidden, 21, -1.0f, 1.0f, s));
  const float scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim));
  CK(embd::bench::attention_reference(qkv.get(), elem(t), 3 * kHidden, cu_dev.as<std::int32_t>(), c.batch, tokens,
                                      kHeads, scale, slopes_dev.as<float>(), ref.as<float>(), s));
  std::vector<float> ref_host(tokens * kHidden);
  status_ok(fast.download(ref_host.data(), ref.get(), ref_host.size() * 4), "download reference");
  char shape[64];
  std::snprintf(shape, sizeof(shape), "%lldx%lld H=512 d=64 alibi", c.batch, c.len);
  if (c.len == 128) {
    const double self = reference_self_check(fast, t, qkv, cu, ref_host, slopes, scale);
    g_rows.push_back({"attention fp32 ref", name_of(t), shape, 0, 0, "-", verdict(self, 1e-5, 0)});
  }
  embd::backend::AttentionArgs a;
  a.qkv = Mat::of(qkv.get(), t, tokens, 3 * kHidden);
  a.out = Mat::of(out.get(), t, tokens, kHidden);
  a.cu_seqlens = cu_dev.as<std::int32_t>();
  a.cu_seqlens_host = cu.data();
  a.batch = c.batch;
  a.max_seqlen = c.len;
  a.num_heads = kHeads;
  a.head_dim = kHeadDim;
  a.scale = scale;
  a.alibi_slopes = slopes_dev.as<float>();
  double flops = 4.0 * static_cast<double>(c.len) * c.len * kHidden * c.batch;
  Backend* backends[4] = {&fast, &mma_sync, &dense, &portable};
  const char* names[4] = {"attention (tensor core)", "attention (mma.sync)", "attention (tc no skip)",
                          "attention (portable)"};
  for (int v = 0; v < 4; ++v) {
    if (t == DType::kF32 && v < 3) continue;  // F32 always runs the portable kernel
    if (v == 2 && c.len < 3 * 64) continue;  // too short for any tile to be skipped
    Backend& be = *backends[v];
    auto* bs = static_cast<cudaStream_t>(embd::backend::cuda::native_stream(be));
    status_ok(fast.synchronize(), "synchronize");  // inputs were written on fast's stream
    CK(cudaMemsetAsync(out.get(), 0xFF, tokens * kHidden * es, bs));
    status_ok(be.attention(a), "attention");
    const unsigned long long bad = nonfinite(be, bs, out.get(), t, tokens, kHidden);
    std::vector<std::uint8_t> raw(tokens * kHidden * es);
    status_ok(be.download(raw.data(), out.get(), raw.size()), "download attention");
    const double rel = rel_error(to_f32(raw, t), ref_host);
    const double ms = time_ms(bs, [&] { status_ok(be.attention(a), "attention"); });
    g_rows.push_back({names[v], name_of(t), shape, ms,
                      flops / (ms * 1e-3) / 1e12, "TFLOP/s", verdict(rel, attention_tolerance(t), bad)});
  }
}

void run_attention_benches(Backend& fast, Backend& dense, Backend& portable, Backend& mma_sync) {
  const AttnCase cases[] = {{1, 16}, {32, 128}, {128, 128}, {512, 128}, {1024, 64}, {8, 2048}, {1, 8192}};
  for (DType t : {DType::kF16, DType::kBF16, DType::kF32}) {
    for (const AttnCase& c : cases) bench_attention(fast, dense, portable, mma_sync, t, c);
  }
}

enum class Only { kAll, kGated, kLayerNorm, kAttention };

int run_all(Only only) {
  const bool gated_only = only == Only::kGated, layernorm_only = only == Only::kLayerNorm;
  const bool attention_only = only == Only::kAttention;
  const int count = embd::backend::cuda::device_count();
  if (count == 0) {
    std::printf("no CUDA device: skipped\n");
    return 0;
  }
  auto be = value_or_die(embd::backend::cuda::make_cuda_backend(0), "make_cuda_backend(0)");
  embd::backend::cuda::CudaBackendOptions popt;
  popt.portable_attention = true;
  auto portable = value_or_die(embd::backend::cuda::make_cuda_backend(0, popt), "make_cuda_backend(0, portable)");
  embd::backend::cuda::CudaBackendOptions dopt;
  dopt.alibi_tile_skipping = false;
  auto dense = value_or_die(embd::backend::cuda::make_cuda_backend(0, dopt), "make_cuda_backend(0, no skipping)");
  embd::backend::cuda::CudaBackendOptions mopt;
  mopt.hopper_attention = false;
  auto mma_sync = value_or_die(embd::backend::cuda::make_cuda_backend(0, mopt), "make_cuda_backend(0, mma.sync)");
  std::printf("device: %s\n", be->description().c_str());
  auto* s = static_cast<cudaStream_t>(embd::backend::cuda::native_stream(*be));
  const auto t0 = std::chrono::steady_clock::now();

  embd::backend::cuda::CudaBackendOptions uopt;
  uopt.fused_gated_linear = false;
  auto unfused = value_or_die(embd::backend::cuda::make_cuda_backend(0, uopt), "make_cuda_backend(0, unfused)");
  for (DType t : {DType::kF16, DType::kBF16}) bench_linear(*be, s, t, 8192, 8192, 8192, false, false, "peak gemm");
  embd::backend::cuda::CudaBackendOptions fopt;
  fopt.gated_fused_min_rows = 0;
  fopt.linear_layernorm_max_k = 1 << 20;  // K = 2048 too, to compare
  fopt.linear_layernorm_fused_min_rows = 0;
  auto fused = value_or_die(embd::backend::cuda::make_cuda_backend(0, fopt), "make_cuda_backend(0, fused)");
  const long long row_counts[] = {16, 64, 128, 256, 512, 1024, 4096, 16384, 65536};
  for (DType t : {DType::kF16, DType::kBF16}) {
    if (layernorm_only || attention_only) break;
    for (long long m : row_counts) {
      bench_gated(*fused, static_cast<cudaStream_t>(embd::backend::cuda::native_stream(*fused)), t, m, 512, 2048,
                  "gated_linear");
      bench_gated(*unfused, static_cast<cudaStream_t>(embd::backend::cuda::native_stream(*unfused)), t, m, 512, 2048,
                  "gated_linear unfused");
    }
  }
  if (!gated_only && !attention_only) {
    // BERT-small's attention output (K = 512) and MLP down (K = 2048) projections.
    embd::backend::cuda::CudaBackendOptions lopt;
    lopt.fused_linear_layernorm = false;
    auto ln_unfused = value_or_die(embd::backend::cuda::make_cuda_backend(0, lopt), "make_cuda_backend(0, ln unfused)");
    for (DType t : {DType::kF16, DType::kBF16}) {
      for (long long k : {512LL, 2048LL}) {
        for (long long m : row_counts) bench_linear_layernorm(*fused, *ln_unfused, t, m, k);
      }
    }
  }
  const bool others = only == Only::kAll;
  if (others) bench_copy(*be, s);
  struct Shape { long long k, n; bool bias, gelu; };
  const Shape shapes[] = {{512, 1536, true, false}, {512, 512, true, false}, {512, 4096, false, false},
                          {2048, 512, true, false}, {512, 2048, true, true}};
  for (DType t : {DType::kF16, DType::kBF16, DType::kF32}) {
    for (long long m : {4096LL, 16384LL, 65536LL}) {
      if (!others) break;
      for (const Shape& sh : shapes) bench_linear(*be, s, t, m, sh.k, sh.n, sh.bias, sh.gelu, "linear");
    }
  }
  status_ok(be->synchronize(), "synchronize");
  if (others || attention_only) run_attention_benches(*be, *dense, *portable, *mma_sync);

  std::printf("\n%-24s %-5s %-30s %10s %10s %-12s %-14s %s\n", "op", "dtype", "shape", "median ms", "rate", "unit",
              "check", "path");
  for (const Row& r : g_rows) {
    std::printf("%-24s %-5s %-30s %10.4f %10.2f %-12s %-14s %s\n", r.op.c_str(), r.dtype.c_str(), r.shape.c_str(),
                r.ms, r.rate, r.unit, r.check.c_str(), r.path.c_str());
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("\n%zu rows, %d check failure(s), %.1f s\n", g_rows.size(), g_failures, secs);
  return g_failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string flag = argc > 1 ? argv[1] : "";
  if (!flag.empty() && flag != "--gated-only" && flag != "--layernorm-only" && flag != "--attention-only") {
    std::fprintf(stderr, "usage: gpu_ops_bench [--gated-only | --layernorm-only | --attention-only]\n");
    return 2;
  }
  return run_all(flag == "--gated-only"       ? Only::kGated
                 : flag == "--layernorm-only" ? Only::kLayerNorm
                 : flag == "--attention-only" ? Only::kAttention
                                              : Only::kAll);
}
