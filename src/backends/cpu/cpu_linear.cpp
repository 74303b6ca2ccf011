#include "backends/cpu/cpu_linear.h"

#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <utility>

namespace embd::backend::cpu {
namespace {

using dt = dnnl::memory::data_type;
using dims = dnnl::memory::dims;

// The M used to ask oneDNN for its preferred weight layout at prepare time. brgemm's blocked
// layout depends on K and N only; every later M reuses it (checked at primitive creation).
constexpr std::int64_t kProbeRows = 128;
// Primitives kept per weight; batches of many distinct token counts evict the least recent.
constexpr std::size_t kCacheEntries = 16;

const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dt weight_dnnl_type(DType compute) { return compute == DType::kBF16 ? dt::bf16 : dt::f32; }

std::string shape_name(std::int64_t out, std::int64_t in) {
  return "linear [" + std::to_string(out) + ", " + std::to_string(in) + "]";
}

}  // namespace

class CpuLinearWeight final : public LinearWeight {
 public:
  struct Key {
    std::int64_t m, ldx, ldy;
    Activation act;
    bool operator==(const Key&) const = default;
  };
  struct Entry {
    Key key;
    dnnl::matmul prim;
    std::uint64_t last_use = 0;
  };

  dt act_type = dt::f32;  // dtype oneDNN sees for x and y (F16 compute runs as F32)
  dnnl::memory::desc packed_md;
  dnnl::memory packed;
  dnnl::memory bias_mem;
  std::vector<float> bias;
  std::vector<Entry> cache;
  std::uint64_t clock = 0;

  dnnl::matmul::desc make_desc(std::int64_t m, std::int64_t ldx, std::int64_t ldy,
                               const dnnl::memory::desc& weights_md) const {
    const std::int64_t k = in_features, n = out_features;
    dnnl::memory::desc src({m, k}, act_type, dims{ldx, 1});
    dnnl::memory::desc dst({m, n}, act_type, dims{ldy, 1});
    dnnl::memory::desc bias_md = has_bias ? dnnl::memory::desc({1, n}, dt::f32, dims{n, 1})
                                          : dnnl::memory::desc();
    return dnnl::matmul::desc(src, weights_md, bias_md, dst);
  }

  // Throws dnnl::error; the caller converts.
  const dnnl::matmul& primitive(const Key& key) {
    ++clock;
    for (auto& e : cache) {
      if (e.key == key) {
        e.last_use = clock;
        return e.prim;
      }
    }
    dnnl::primitive_attr attr;
    if (key.act != Activation::kNone) {
      dnnl::post_ops ops;
      ops.append_eltwise(1.0f,
                         key.act == Activation::kGeluErf ? dnnl::algorithm::eltwise_gelu_erf
                                                         : dnnl::algorithm::eltwise_relu,
                         0.0f, 0.0f);
      attr.set_post_ops(ops);
    }
    dnnl::matmul::primitive_desc pd(make_desc(key.m, key.ldx, key.ldy, packed_md), attr,
                                    cpu_engine());
    Entry entry{key, dnnl::matmul(pd), clock};
    if (cache.size() < kCacheEntries) {
      cache.push_back(std::move(entry));
      return cache.back().prim;
    }
    auto* oldest = &cache[0];
    for (auto& e : cache) oldest = e.last_use < oldest->last_use ? &e : oldest;
    *oldest = std::move(entry);
    return oldest->prim;
  }
};

bool linear_supported(DType compute_dtype) {
  if (compute_dtype != DType::kBF16) return true;  // F32, and F16 through F32
  static const bool bf16_ok = [] {
    try {
      dnnl::memory::desc src({16, 64}, dt::bf16, dnnl::memory::format_tag::ab);
      dnnl::memory::desc wei({64, 64}, dt::bf16, dnnl::memory::format_tag::any);
      dnnl::memory::desc dst({16, 64}, dt::bf16, dnnl::memory::format_tag::ab);
      dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, wei, dst), cpu_engine());
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return bf16_ok;
}

Result<std::unique_ptr<LinearWeight>> prepare_cpu_linear(const HostTensor& weight,
                                                         const HostTensor* bias,
                                                         DType compute_dtype) {
  if (weight.shape.size() != 2 || weight.shape[0] <= 0 || weight.shape[1] <= 0) {
    return invalid_argument("linear weight '" + weight.name + "': expected a 2-D [out, in] tensor, got " +
                            weight.shape_string());
  }
  const std::int64_t n = weight.shape[0], k = weight.shape[1];
  if (bias && (bias->shape.size() != 1 || bias->shape[0] != n)) {
    return invalid_argument("linear bias '" + bias->name + "': expected [" + std::to_string(n) +
                            "], got " + bias->shape_string());
  }
  if (!linear_supported(compute_dtype)) {
    return unsupported("linear weight '" + weight.name + "': this CPU has no " +
                       std::string(dtype_name(compute_dtype)) + " matmul in oneDNN");
  }
  auto w = std::make_unique<CpuLinearWeight>();
  w->out_features = n;
  w->in_features = k;
  w->dtype = compute_dtype;
  w->has_bias = bias != nullptr;
  w->act_type = weight_dnnl_type(compute_dtype);

  // Plain weights in the oneDNN weight dtype. F16 compute: round to F16 first, so the F32 GEMM
  // sees exactly the F16 weights.
  const std::size_t count = static_cast<std::size_t>(n * k);
  const DType plain_type = compute_dtype == DType::kBF16 ? DType::kBF16 : DType::kF32;
  std::vector<std::uint8_t> plain(count * dtype_size(plain_type));
  if (compute_dtype == DType::kF16 && weight.dtype != DType::kF16) {
    std::vector<std::uint16_t> half(count);
    convert(weight.data, weight.dtype, half.data(), DType::kF16, count);
    convert(half.data(), DType::kF16, plain.data(), plain_type, count);
  } else {
    convert(weight.data, weight.dtype, plain.data(), plain_type, count);
  }
  if (bias) {
    w->bias.resize(static_cast<std::size_t>(n));
    convert(bias->data, bias->dtype, w->bias.data(), DType::kF32, w->bias.size());
    w->bias_f32 = w->bias.data();
  }
  try {
    const auto& eng = cpu_engine();
    // Weights are [K, N] to oneDNN; our [N, K] row-major buffer is its "ba" layout.
    dnnl::memory::desc plain_md({k, n}, w->act_type, dnnl::memory::format_tag::ba);
    dnnl::memory::desc any_md({k, n}, w->act_type, dnnl::memory::format_tag::any);
    dnnl::matmul::primitive_desc pd(w->make_desc(kProbeRows, k, n, any_md), eng);
    w->packed_md = pd.weights_desc();
    w->packed = dnnl::memory(w->packed_md, eng);
    dnnl::memory plain_mem(plain_md, eng, plain.data());
    dnnl::stream stream(eng);
    dnnl::reorder(plain_mem, w->packed).execute(stream, plain_mem, w->packed);
    stream.wait();
    if (bias) {
      w->bias_mem = dnnl::memory({{1, n}, dt::f32, dims{n, 1}}, eng, w->bias.data());
    }
  } catch (const dnnl::error& e) {
    return device_error("linear weight '" + weight.name + "': oneDNN failed to pack " +
                        shape_name(n, k) + ": " + e.what());
  }
  return std::unique_ptr<LinearWeight>(std::move(w));
}

namespace {

// Widens rows of an F16 matrix into a dense F32 matrix, or narrows back.
void convert_rows(const void* src, DType st, std::int64_t lds, void* dst, DType dtt,
                  std::int64_t ldd, std::int64_t rows, std::int64_t cols) {
  const auto* s = static_cast<const std::uint8_t*>(src);
  auto* d = static_cast<std::uint8_t*>(dst);
  const std::int64_t ss = lds * static_cast<std::int64_t>(dtype_size(st));
  const std::int64_t ds = ldd * static_cast<std::int64_t>(dtype_size(dtt));
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
  for (std::int64_t r = 0; r < rows; ++r) {
    convert(s + r * ss, st, d + r * ds, dtt, static_cast<std::size_t>(cols));
  }
}

}  // namespace

Status run_cpu_linear(const LinearArgs& a, std::vector<float>& scratch) {
  auto* w = const_cast<CpuLinearWeight*>(dynamic_cast<const CpuLinearWeight*>(a.weight));
  if (!w) return internal_error("linear: the weight was not prepared by the CPU backend");
  const std::int64_t m = a.x.rows, k = w->in_features, n = w->out_features;
  if (m == 0) return ok_status();
  try {
    const auto& eng = cpu_engine();
    dnnl::stream stream(eng);
    void* x = a.x.data;
    void* y = a.y.data;
    std::int64_t ldx = a.x.ld, ldy = a.y.ld;
    float* y32 = nullptr;
    if (w->dtype == DType::kF16) {
      scratch.resize(static_cast<std::size_t>(m * (k + n)));
      float* x32 = scratch.data();
      y32 = x32 + m * k;
      convert_rows(a.x.data, DType::kF16, a.x.ld, x32, DType::kF32, k, m, k);
      x = x32;
      y = y32;
      ldx = k;
      ldy = n;
    }
    const auto& prim = w->primitive({m, ldx, ldy, a.activation});
    dnnl::memory src({{m, k}, w->act_type, dims{ldx, 1}}, eng, x);
    dnnl::memory dst({{m, n}, w->act_type, dims{ldy, 1}}, eng, y);
    std::unordered_map<int, dnnl::memory> args{
        {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w->packed}, {DNNL_ARG_DST, dst}};
    if (w->has_bias) args.emplace(DNNL_ARG_BIAS, w->bias_mem);
    prim.execute(stream, args);
    stream.wait();
    if (y32) convert_rows(y32, DType::kF32, n, a.y.data, DType::kF16, a.y.ld, m, n);
  } catch (const dnnl::error& e) {
    return device_error(shape_name(n, k) + " at M=" + std::to_string(m) +
                        ": oneDNN matmul failed: " + e.what());
  }
  return ok_status();
}

}  // namespace embd::backend::cpu
