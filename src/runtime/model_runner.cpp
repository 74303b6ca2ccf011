#include "runtime/model_runner.h"

#include <algorithm>
#include <string>

#include "ops/ops.h"

namespace embd::runtime {

Result<std::unique_ptr<ModelRunner>> ModelRunner::create(std::unique_ptr<backend::Backend> be,
                                                         const io::ModelConfig& config,
                                                         const io::WeightSet& weights,
                                                         DType dtype,
                                                         std::int64_t graph_max_tokens) {
  std::unique_ptr<ModelRunner> runner(new ModelRunner());
  runner->be_ = std::move(be);
  runner->recorded_ = RecordedShapes(runner->be_->can_record() ? graph_max_tokens : 0);
  runner->pooling_ = config.pooling;
  auto encoder = models::load_encoder(config, weights, *runner->be_, dtype);
  if (!encoder.ok()) return encoder.status().with_context("loading the model on " + runner->be_->name());
  runner->encoder_ = std::move(encoder).value();
  runner->concurrent_ = batches_at_once(*runner->be_) > 1;
  return runner;
}

std::size_t ModelRunner::hidden_size() const {
  return static_cast<std::size_t>(encoder_->config().hidden_size);
}

namespace {

// Grows `mem` to at least `bytes` (with headroom) through `allocate`; keeps it when large enough.
template <typename Memory, typename Allocate>
Status grow(Memory& mem, std::size_t bytes, Allocate allocate) {
  if (mem.bytes() >= bytes) return ok_status();
  mem.reset();
  EMBD_ASSIGN_OR_RETURN(mem, allocate(bytes + bytes / 2));
  return ok_status();
}

}  // namespace

Status ModelRunner::stage_inputs(const PackedBatch& batch, Slot& slot, models::EncoderInput& in) {
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
  const std::size_t bytes = staging_.size() * sizeof(std::int32_t);
  EMBD_TRY(grow(slot.inputs, bytes, [&](std::size_t n) { return be_->allocate(n); }));
  EMBD_TRY(be_->upload(slot.inputs.get(), staging_.data(), bytes));
  const auto* dev = slot.inputs.as<std::int32_t>();
  in.ids = dev;
  in.positions = dev + t;
  in.cu_seqlens = dev + 2 * t;
  in.cu_seqlens_host = batch.cu_seqlens.data();
  in.tokens = static_cast<std::int64_t>(t);
  in.batch = static_cast<std::int64_t>(b);
  in.max_seqlen = batch.max_seqlen;
  return ok_status();
}

Status ModelRunner::enqueue(const PackedBatch& batch, Slot& slot) {
  models::EncoderInput in;
  if (concurrent_) {
    EMBD_TRY(be_->use_stream(slot_index(slot)));
    in.workspace = slot_index(slot);
  }
  EMBD_TRY(stage_inputs(batch, slot, in));
  const std::size_t h = hidden_size(), b = batch.sequences(), bytes = b * h * sizeof(float);
  EMBD_TRY(grow(slot.pooled, bytes, [&](std::size_t n) { return be_->allocate(n); }));
  EMBD_TRY(grow(slot.pooled_host, bytes, [&](std::size_t n) { return be_->allocate_host(n); }));
  const RecordedShapes::Shape shape{slot_index(slot), in.tokens, in.batch, in.max_seqlen};
  RecordedShapes::Action action = recorded_.plan(shape, be_->memory_generation());
  if (action == RecordedShapes::Action::kRecord && record(shape, in, slot)) {
    action = RecordedShapes::Action::kReplay;
  }
  if (action == RecordedShapes::Action::kReplay) {
    // Small work: the next batch may be staged as soon as the ones before this are done.
    EMBD_ASSIGN_OR_RETURN(slot.almost_done, be_->fence());
    EMBD_TRY(be_->replay(recorded_.recording(shape)));
  } else {
    const int layers = encoder_->config().num_hidden_layers;
    slot.almost_done = 0;
    if (layers < 2) {
      EMBD_ASSIGN_OR_RETURN(slot.almost_done, be_->fence());
    } else {
      in.layer_enqueued = [&](int layer) -> Status {
        if (layer + 2 == layers) {
          EMBD_ASSIGN_OR_RETURN(slot.almost_done, be_->fence());
        }
        return ok_status();
      };
    }
    EMBD_TRY(forward_and_pool(in, slot));
  }
  EMBD_TRY(be_->download_async(slot.pooled_host.get(), slot.pooled.get(), bytes));
  slot.rows = b;
  EMBD_ASSIGN_OR_RETURN(slot.done, be_->fence());
  return ok_status();
}

Status ModelRunner::forward_and_pool(const models::EncoderInput& in, Slot& slot) {
  EMBD_ASSIGN_OR_RETURN(Mat hidden, encoder_->forward(in));
  backend::PoolArgs p;
  p.hidden = hidden;
  p.cu_seqlens = in.cu_seqlens;
  p.cu_seqlens_host = in.cu_seqlens_host;
  p.batch = in.batch;
  p.mode = pooling_ == io::Pooling::kCls ? backend::PoolMode::kCls : backend::PoolMode::kMean;
  p.out = slot.pooled.as<float>();
  return ops::pool(*be_, p);
}

bool ModelRunner::record(const RecordedShapes::Shape& shape, const models::EncoderInput& in, Slot& slot) {
  // Whatever fails (the device cannot record now, an op that cannot be recorded, or a real error
  // that the eager run will report again), nothing ran: the shape runs eagerly from now on.
  std::unique_ptr<backend::Recording> recording;
  if (be_->begin_recording().ok()) {
    const Status forward = forward_and_pool(in, slot);
    auto recorded = be_->end_recording();
    if (forward.ok() && recorded.ok()) recording = std::move(recorded).value();
  }
  const bool ok = recording != nullptr;
  recorded_.store(shape, std::move(recording));
  return ok;
}

Result<std::span<const float>> ModelRunner::landed_rows(const Slot& slot) {
  EMBD_TRY(be_->wait(slot.done));
  return std::span<const float>(slot.pooled_host.as<const float>(), slot.rows * hidden_size());
}

Status ModelRunner::run_once(const PackedBatch& batch, Slot& slot, std::vector<float>& pooled) {
  EMBD_TRY(enqueue(batch, slot));
  EMBD_ASSIGN_OR_RETURN(const std::span<const float> rows, landed_rows(slot));
  pooled.assign(rows.begin(), rows.end());
  return ok_status();
}

Status ModelRunner::run_split(const PackedBatch& batch, Slot& slot, std::vector<float>& pooled) {
  Status s = run_once(batch, slot, pooled);
  if (s.code() != ErrorCode::kOutOfMemory || batch.sequences() < 2) return s;
  // Out of device memory: run the two halves separately (recursively) before giving up.
  const std::size_t half = batch.sequences() / 2;
  std::vector<float> first, second;
  EMBD_TRY(run_split(slice(batch, 0, half), slot, first));
  EMBD_TRY(run_split(slice(batch, half, batch.sequences()), slot, second));
  pooled = std::move(first);
  pooled.insert(pooled.end(), second.begin(), second.end());
  return ok_status();
}

Status ModelRunner::run(const PackedBatch& batch, std::vector<float>& pooled) {
  if (started_ != finished_) return internal_error("run() while pipelined batches are in flight");
  return run_split(batch, slots_[started_ % kSlots], pooled);
}

bool ModelRunner::enable_device_timing() {
  timing_ = be_->mark().ok();
  return timing_;
}

Status ModelRunner::start(const PackedBatch& batch) {
  if (started_ - finished_ >= kSlots) {
    return internal_error("start() with " + std::to_string(kSlots) + " batches already in flight");
  }
  Slot& slot = slots_[started_ % kSlots];
  slot.ran_synchronously = false;
  // A timestamp that cannot be recorded leaves the batch untimed; tracing never fails work.
  const auto mark = [&]() -> backend::Mark {
    if (!timing_) return 0;
    auto m = be_->mark();
    return m.ok() ? *m : 0;
  };
  if (concurrent_) EMBD_TRY(be_->use_stream(slot_index(slot)));  // the marks go on its stream
  slot.begin_mark = mark();
  Status s = enqueue(batch, slot);
  slot.end_mark = s.ok() ? mark() : 0;
  if (s.code() == ErrorCode::kOutOfMemory) {
    // Let the batches ahead finish (their memory stays), then split this one as run() does.
    EMBD_TRY(be_->synchronize());
    slot.ran_synchronously = true;
    slot.status = run_split(batch, slot, slot.result);
    s = ok_status();
  }
  if (s.ok()) ++started_;
  return s;
}

Status ModelRunner::wait_almost_done() {
  if (started_ == finished_) return ok_status();
  const Slot& newest = slots_[(started_ - 1) % kSlots];
  return newest.ran_synchronously ? ok_status() : be_->wait(newest.almost_done);
}

Status ModelRunner::finish(std::span<const float>& rows) {
  if (started_ == finished_) return internal_error("finish() without a started batch");
  Slot& slot = slots_[finished_++ % kSlots];
  span_.reset();
  if (slot.begin_mark != 0 && slot.end_mark != 0 && !slot.ran_synchronously) {
    auto begin = be_->mark_seconds(slot.begin_mark);
    auto end = be_->mark_seconds(slot.end_mark);
    if (begin.ok() && end.ok()) span_ = DeviceSpan{*begin, *end};
  }
  if (slot.ran_synchronously) {
    rows = slot.result;  // kept until this slot starts its next batch
    return slot.status;
  }
  EMBD_ASSIGN_OR_RETURN(rows, landed_rows(slot));
  return ok_status();
}

std::vector<std::int64_t> ModelRunner::warm_up_sizes(std::int64_t max_tokens) {
  std::vector<std::int64_t> sizes;
  for (std::int64_t top = 8; top <= max_tokens; top *= 2) {
    for (std::int64_t k = 0; k < 4; ++k) {
      const std::int64_t t = top + k * top / 4;
      if (t <= max_tokens) sizes.push_back(t);
    }
  }
  if (sizes.empty() || sizes.back() != max_tokens) sizes.push_back(std::max<std::int64_t>(max_tokens, 1));
  return sizes;
}

Status ModelRunner::warm_up(std::int64_t max_tokens, std::int64_t max_seqlen) {
  if (started_ != finished_) return internal_error("warm_up() while batches are in flight");
  const std::int64_t vocab = encoder_->config().vocab_size;
  // One long sequence (attention takes another path past a few hundred tokens), then 128-token
  // ones: every size runs both a long and a short attention case over the sizes.
  const std::int64_t longest = std::max<std::int64_t>(1, std::min<std::int64_t>(max_seqlen, 1024));
  const auto batch_of = [&](std::int64_t tokens) {
    PackedBatch b;
    b.cu_seqlens.push_back(0);
    for (std::int64_t done = 0; done < tokens;) {
      const std::int64_t len = std::min(tokens - done, done == 0 ? longest : std::min<std::int64_t>(128, longest));
      for (std::int64_t i = 0; i < len; ++i) b.ids.push_back(static_cast<std::int32_t>((done + i) % vocab));
      done += len;
      b.cu_seqlens.push_back(static_cast<std::int32_t>(done));
      b.max_seqlen = std::max(b.max_seqlen, static_cast<std::int32_t>(len));
    }
    return b;
  };
  const auto stop_at_oom = [](Status s) { return s.code() == ErrorCode::kOutOfMemory ? ok_status() : s; };
  std::span<const float> rows;
  if (pipeline_depth() < 2) {
    std::vector<float> pooled;
    for (std::int64_t t : warm_up_sizes(max_tokens)) {
      const Status s = run(batch_of(t), pooled);
      if (!s.ok()) return stop_at_oom(s);
    }
    return ok_status();
  }
  // Pipelined, two batches in flight, so both slots grow to the largest size. On an error the
  // batches in flight are finished all the same: the runner is left with none.
  const auto drain = [&](Status first) {
    while (started_ != finished_) {
      const Status s = finish(rows);
      if (first.ok()) first = s;
    }
    return stop_at_oom(first);
  };
  for (std::int64_t t : warm_up_sizes(max_tokens)) {
    Status s = started_ - finished_ == kSlots ? finish(rows) : ok_status();
    if (s.ok()) s = start(batch_of(t));
    if (!s.ok()) return drain(s);
  }
  return drain(ok_status());
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

}  // namespace embd::runtime
