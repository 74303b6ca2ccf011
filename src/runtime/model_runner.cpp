#include "runtime/model_runner.h"

#include <algorithm>
#include <string>

#include "ops/ops.h"

namespace embd::runtime {

Result<std::unique_ptr<ModelRunner>> ModelRunner::create(std::unique_ptr<backend::Backend> be,
                                                         const io::ModelConfig& config,
                                                         const io::WeightSet& weights,
                                                         DType dtype) {
  std::unique_ptr<ModelRunner> runner(new ModelRunner());
  runner->be_ = std::move(be);
  runner->pooling_ = config.pooling;
  auto encoder = models::load_encoder(config, weights, *runner->be_, dtype);
  if (!encoder.ok()) return encoder.status().with_context("loading the model on " + runner->be_->name());
  runner->encoder_ = std::move(encoder).value();
  return runner;
}

std::size_t ModelRunner::hidden_size() const {
  return static_cast<std::size_t>(encoder_->config().hidden_size);
}

static Status grow(backend::Backend& be, backend::DeviceMemory& mem, std::size_t bytes) {
  if (mem.bytes() >= bytes) return ok_status();
  mem.reset();
  EMBD_ASSIGN_OR_RETURN(mem, be.allocate(bytes + bytes / 2));
  return ok_status();
}

Status ModelRunner::stage_inputs(const PackedBatch& batch, models::EncoderInput& in) {
  const std::size_t t = batch.tokens(), b = batch.sequences();
  if (t == 0 || b == 0) return invalid_argument("empty batch");
  staging_.resize(2 * t + b + 1);
  std::copy(batch.ids.begin(), batch.ids.end(), staging_.begin());
  std::int32_t* positions = staging_.data() + t;
  for (std::size_t s = 0; s < b; ++s) {
    for (std::int32_t i = batch.cu_seqlens[s]; i < batch.cu_seqlens[s + 1]; ++i) {
      positions[i] = i - batch.cu_seqlens[s];
    }
  }
  std::copy(batch.cu_seqlens.begin(), batch.cu_seqlens.end(), staging_.begin() + 2 * static_cast<std::ptrdiff_t>(t));
  EMBD_TRY(grow(*be_, inputs_, staging_.size() * sizeof(std::int32_t)));
  EMBD_TRY(be_->upload(inputs_.get(), staging_.data(), staging_.size() * sizeof(std::int32_t)));
  const auto* dev = inputs_.as<std::int32_t>();
  in.ids = dev;
  in.positions = dev + t;
  in.cu_seqlens = dev + 2 * t;
  in.cu_seqlens_host = batch.cu_seqlens.data();
  in.tokens = static_cast<std::int64_t>(t);
  in.batch = static_cast<std::int64_t>(b);
  in.max_seqlen = batch.max_seqlen;
  return ok_status();
}

Status ModelRunner::run(const PackedBatch& batch, std::vector<float>& pooled) {
  Status s = run_once(batch, pooled);
  if (s.code() != ErrorCode::kOutOfMemory || batch.sequences() < 2) return s;
  // Out of device memory: run the two halves separately (recursively) before giving up.
  const std::size_t half = batch.sequences() / 2;
  std::vector<float> first, second;
  EMBD_TRY(run(slice(batch, 0, half), first));
  EMBD_TRY(run(slice(batch, half, batch.sequences()), second));
  pooled = std::move(first);
  pooled.insert(pooled.end(), second.begin(), second.end());
  return ok_status();
}

PackedBatch ModelRunner::slice(const PackedBatch& batch, std::size_t begin, std::size_t end) {
  PackedBatch out;
  const std::int32_t offset = batch.cu_seqlens[begin];
  out.ids.assign(batch.ids.begin() + offset, batch.ids.begin() + batch.cu_seqlens[end]);
  for (std::size_t s = begin; s <= end; ++s) out.cu_seqlens.push_back(batch.cu_seqlens[s] - offset);
  for (std::size_t s = 0; s + 1 < out.cu_seqlens.size(); ++s) {
    out.max_seqlen = std::max(out.max_seqlen, out.cu_seqlens[s + 1] - out.cu_seqlens[s]);
  }
  return out;
}

Status ModelRunner::run_once(const PackedBatch& batch, std::vector<float>& pooled) {
  models::EncoderInput in;
  EMBD_TRY(stage_inputs(batch, in));
  EMBD_ASSIGN_OR_RETURN(Mat hidden, encoder_->forward(in));
  const std::size_t h = hidden_size(), b = batch.sequences();
  EMBD_TRY(grow(*be_, pooled_, b * h * sizeof(float)));
  backend::PoolArgs p;
  p.hidden = hidden;
  p.cu_seqlens = in.cu_seqlens;
  p.cu_seqlens_host = in.cu_seqlens_host;
  p.batch = in.batch;
  p.mode = pooling_ == io::Pooling::kCls ? backend::PoolMode::kCls : backend::PoolMode::kMean;
  p.out = pooled_.as<float>();
  EMBD_TRY(ops::pool(*be_, p));
  pooled.resize(b * h);
  return be_->download(pooled.data(), pooled_.get(), b * h * sizeof(float));
}

}  // namespace embd::runtime
