// forward_profile: where the time of one device batch goes on a GPU. Loads a model on a CUDA
// backend wrapped in a decorator that brackets every kernel call with CUDA events, runs batches of
// given shapes through ModelRunner (the executor's code path, minus the scheduler), and prints per
// op kind: calls, GPU milliseconds per batch and share, next to the batch's wall time. What the
// events do not cover (wall minus kernels) is host work and launch gaps. Shape "mixed" is a
// batch of --batch-tokens tokens of lognormal lengths like the mixed4096 workload (median 120,
// sigma 0.8), longest first, as the scheduler packs them.
//   forward_profile --model DIR [--dtype f16] [--shapes 512x128,mixed,1x8192] [--batch-tokens 16384]
//                   [--repeat 5] [--defer-bias 0]   (0: add Linear biases in linear(), not in the LayerNorm)
//                   [--fused-glu 0]    (0: cuBLASLt + the GLU kernel instead of the fused Hopper kernel)
//                   [--fused-ln 0]     (0: cuBLASLt + add_layernorm instead of the fused Hopper Linear + LayerNorm)
//                   [--early-launch 0] (0: no programmatic dependent launch; the events between kernels hide
//                                       most of what it gains, see embd bench for that)
//                   [--hopper-attention 0] (0: attention with mma.sync instead of wgmma on Hopper)
// A fused Linear + LayerNorm shows as "linear_layernorm K->N"; unfused, as its linear and add_layernorm.
// Prints "no CUDA device: skipped" without a GPU.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cuda/cuda_backend.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "runtime/model_runner.h"

namespace {

using embd::Result;
using embd::Status;
namespace be = embd::backend;

// Forwards every call to `inner`, timing each kernel on inner's stream.
class ProfilingBackend final : public be::Backend {
 public:
  ProfilingBackend(std::unique_ptr<be::Backend> inner, bool defer_bias)
      : inner_(std::move(inner)), stream_(static_cast<cudaStream_t>(be::cuda::native_stream(*inner_))),
        defer_bias_(defer_bias) {}
  ~ProfilingBackend() override {
    for (auto& m : marks_) {
      cudaEventDestroy(m.start);
      cudaEventDestroy(m.stop);
    }
  }

  std::string name() const override { return inner_->name(); }
  std::string description() const override { return inner_->description(); }
  bool supports(be::Op op, embd::DType t) const override { return inner_->supports(op, t); }
  embd::DType preferred_dtype(embd::DType t) const override { return inner_->preferred_dtype(t); }
  Result<be::DeviceMemory> allocate(std::size_t bytes) override { return inner_->allocate(bytes); }
  Status upload(void* d, const void* s, std::size_t n) override { return inner_->upload(d, s, n); }
  Status download(void* d, const void* s, std::size_t n) override { return inner_->download(d, s, n); }
  Status synchronize() override { return inner_->synchronize(); }
  bool asynchronous() const override { return inner_->asynchronous(); }
  Result<be::HostMemory> allocate_host(std::size_t bytes) override { return inner_->allocate_host(bytes); }
  Status download_async(void* d, const void* s, std::size_t n) override { return inner_->download_async(d, s, n); }
  Result<be::Fence> fence() override { return inner_->fence(); }
  Status wait(be::Fence f) override { return inner_->wait(f); }
  bool defers_linear_bias(const be::LinearWeight& w) const override {
    return defer_bias_ && inner_->defers_linear_bias(w);
  }
  Result<std::unique_ptr<be::LinearWeight>> prepare_linear(const embd::HostTensor& w, const embd::HostTensor* b,
                                                           embd::DType t) override {
    return inner_->prepare_linear(w, b, t);
  }
  Result<std::unique_ptr<be::LinearWeight>> prepare_gated_linear(const embd::HostTensor& w, bool first,
                                                                 embd::DType t) override {
    return inner_->prepare_gated_linear(w, first, t);
  }
  bool fuses_gated_linear(const be::LinearWeight& w, be::Activation act) const override {
    return inner_->fuses_gated_linear(w, act);
  }
  Status gated_linear(const be::GatedLinearArgs& a) override {
    const std::string what = "gated_linear " + std::to_string(a.weight->in_features) + "->" +
                             std::to_string(a.weight->out_features / 2);
    return timed(what, [&] { return inner_->gated_linear(a); });
  }
  bool fuses_linear_layernorm(const be::LinearWeight& w) const override { return inner_->fuses_linear_layernorm(w); }
  // One op where the inner backend fuses the weight (batches under its fused_min_rows, 1024, or rows
  // the kernel cannot address fall back inside, under this name; the shapes profiled are larger). Otherwise the base class's linear() and
  // add_layernorm(), through this wrapper: each timed apart, and --defer-bias applies, as before
  // the op existed.
  Status linear_layernorm(const be::LinearLayerNormArgs& a) override {
    if (inner_->fuses_linear_layernorm(*a.weight)) {
      const std::string what = "linear_layernorm " + std::to_string(a.weight->in_features) + "->" +
                               std::to_string(a.weight->out_features);
      return timed(what, [&] { return inner_->linear_layernorm(a); });
    }
    return Backend::linear_layernorm(a);
  }

  Status linear(const be::LinearArgs& a) override {
    const std::string what = "linear " + std::to_string(a.weight->in_features) + "->" +
                             std::to_string(a.weight->out_features);
    return timed(what, [&] { return inner_->linear(a); });
  }
  Status embed_layernorm(const be::EmbedLayerNormArgs& a) override {
    return timed("embed_layernorm", [&] { return inner_->embed_layernorm(a); });
  }
  Status add_layernorm(const be::AddLayerNormArgs& a) override {
    return timed("add_layernorm", [&] { return inner_->add_layernorm(a); });
  }
  Status glu(const be::GluArgs& a) override { return timed("glu", [&] { return inner_->glu(a); }); }
  Status attention(const be::AttentionArgs& a) override {
    return timed("attention", [&] { return inner_->attention(a); });
  }
  Status pool(const be::PoolArgs& a) override { return timed("pool", [&] { return inner_->pool(a); }); }

  // Adds the recorded kernel times (after synchronize()) to `totals` and forgets them.
  void collect(std::vector<std::pair<std::string, std::array<double, 2>>>& totals) {
    for (std::size_t i = 0; i < used_; ++i) {
      float ms = 0;
      cudaEventElapsedTime(&ms, marks_[i].start, marks_[i].stop);
      auto it = std::find_if(totals.begin(), totals.end(), [&](auto& t) { return t.first == marks_[i].what; });
      if (it == totals.end()) it = totals.insert(totals.end(), {marks_[i].what, {0.0, 0.0}});
      it->second[0] += 1;
      it->second[1] += ms;
    }
    used_ = 0;
  }

 protected:
  void release(void*) override {}  // memory is owned and released by inner_

 private:
  struct Mark {
    std::string what;
    cudaEvent_t start = nullptr, stop = nullptr;
  };
  template <typename Call>
  Status timed(const std::string& what, Call call) {
    if (used_ == marks_.size()) {
      Mark m;
      cudaEventCreate(&m.start);
      cudaEventCreate(&m.stop);
      marks_.push_back(m);
    }
    Mark& m = marks_[used_++];
    m.what = what;
    cudaEventRecord(m.start, stream_);
    Status s = call();
    cudaEventRecord(m.stop, stream_);
    return s;
  }

  std::unique_ptr<be::Backend> inner_;
  cudaStream_t stream_;
  bool defer_bias_;
  std::vector<Mark> marks_;
  std::size_t used_ = 0;
};

int die(const std::string& what) {
  std::fprintf(stderr, "forward_profile: %s\n", what.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model, dtype_name = "f16", shapes = "512x128,128x512,16x4096,1x8192";
  int repeat = 5;
  long long batch_tokens = 16384;
  bool defer_bias = true;
  bool fused_glu = true;
  bool fused_ln = true;
  bool early = true;
  bool hopper_attention = true;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") model = v;
    else if (k == "--dtype") dtype_name = v;
    else if (k == "--shapes") shapes = v;
    else if (k == "--repeat") repeat = std::max(1, std::atoi(v.c_str()));
    else if (k == "--batch-tokens") batch_tokens = std::max(1LL, std::atoll(v.c_str()));
    else if (k == "--defer-bias") defer_bias = v != "0";
    else if (k == "--fused-glu") fused_glu = v != "0";
    else if (k == "--fused-ln") fused_ln = v != "0";
    else if (k == "--early-launch") early = v != "0";
    else if (k == "--hopper-attention") hopper_attention = v != "0";
    else return die("unknown flag " + k);
  }
  if (model.empty()) return die("--model DIR is required");
  if (be::cuda::device_count() == 0) {
    std::printf("no CUDA device: skipped\n");
    return 0;
  }
  auto config = embd::io::load_model_config(model);
  if (!config.ok()) return die(config.status().to_string());
  auto weights = embd::io::WeightSet::open_dir(model);
  if (!weights.ok()) return die(weights.status().to_string());
  auto dtype = embd::parse_dtype(dtype_name);
  if (!dtype.ok()) return die(dtype.status().to_string());
  be::cuda::CudaBackendOptions options;
  options.fused_gated_linear = fused_glu;
  options.fused_linear_layernorm = fused_ln;
  options.early_launch = early;
  options.hopper_attention = hopper_attention;
  auto cuda = be::cuda::make_cuda_backend(0, options);
  if (!cuda.ok()) return die(cuda.status().to_string());
  auto profiling = std::make_unique<ProfilingBackend>(std::move(cuda).value(), defer_bias);
  ProfilingBackend* prof = profiling.get();
  auto runner = embd::runtime::ModelRunner::create(std::move(profiling), *config, **weights, *dtype);
  if (!runner.ok()) return die(runner.status().to_string());
  std::printf("model %s, %s, %s%s%s%s%s%s\n", model.c_str(), dtype_name.c_str(), prof->description().c_str(),
              defer_bias ? "" : ", --defer-bias 0", fused_glu ? "" : ", --fused-glu 0",
              fused_ln ? "" : ", --fused-ln 0", early ? "" : ", --early-launch 0",
              hopper_attention ? "" : ", --hopper-attention 0");

  std::mt19937 rng(7);
  std::size_t pos = 0;
  while (pos < shapes.size()) {
    const std::size_t end = std::min(shapes.find(',', pos), shapes.size());
    const std::string shape = shapes.substr(pos, end - pos);
    pos = end + 1;
    std::vector<int> lengths;
    if (shape == "mixed") {
      std::lognormal_distribution<double> dist(std::log(120.0), 0.8);
      long long total = 0;
      for (;;) {
        const int len = std::clamp(static_cast<int>(dist(rng)), 1, static_cast<int>(config->max_length));
        if (total + len > batch_tokens) break;
        lengths.push_back(len);
        total += len;
      }
      std::sort(lengths.rbegin(), lengths.rend());
    } else {
      const std::size_t x = shape.find('x');
      if (x == std::string::npos) return die("shape '" + shape + "': expected BxL or mixed");
      const int batch = std::atoi(shape.c_str()), len = std::atoi(shape.c_str() + x + 1);
      if (batch <= 0 || len <= 0) return die("shape '" + shape + "': expected BxL or mixed");
      lengths.assign(static_cast<std::size_t>(batch), len);
    }
    embd::runtime::PackedBatch b;
    b.cu_seqlens.push_back(0);
    std::uniform_int_distribution<int> id(1000, static_cast<int>(config->vocab_size) - 1);
    for (int len : lengths) {
      for (int t = 0; t < len; ++t) b.ids.push_back(id(rng));
      b.cu_seqlens.push_back(static_cast<std::int32_t>(b.ids.size()));
      b.max_seqlen = std::max(b.max_seqlen, len);
    }
    std::vector<float> pooled;
    std::vector<std::pair<std::string, std::array<double, 2>>> totals;
    Status st = (*runner)->run(b, pooled);  // warm-up (allocations)
    if (!st.ok()) return die(st.to_string());
    prof->collect(totals);
    totals.clear();
    std::vector<double> walls;
    for (int r = 0; r < repeat; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      st = (*runner)->run(b, pooled);
      walls.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      if (!st.ok()) return die(st.to_string());
      prof->collect(totals);
    }
    std::sort(walls.begin(), walls.end());
    double kernels = 0;
    for (auto& t : totals) kernels += t.second[1] / repeat;
    std::printf("\n== %s (%zu sequences, %zu tokens, longest %d): wall p50 %.3f ms, kernels %.3f ms, other %.3f ms\n", shape.c_str(),
                b.sequences(), b.ids.size(), b.max_seqlen, walls[walls.size() / 2], kernels, walls[walls.size() / 2] - kernels);
    std::printf("%-26s %8s %12s %8s\n", "op", "calls", "ms/batch", "share");
    std::sort(totals.begin(), totals.end(), [](auto& a, auto& c) { return a.second[1] > c.second[1]; });
    for (auto& t : totals) {
      std::printf("%-26s %8.0f %12.4f %7.1f%%\n", t.first.c_str(), t.second[0] / repeat, t.second[1] / repeat,
                  100.0 * t.second[1] / repeat / std::max(kernels, 1e-9));
    }
  }
  return 0;
}
