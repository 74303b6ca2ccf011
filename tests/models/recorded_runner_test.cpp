// Recorded work (CUDA graphs) in ModelRunner: the replay policy of RecordedShapes, and runners
// whose small batches replay recorded work giving the rows eager runs give, with new ids and
// offsets each time. On the CPU a test backend records ops as closures; on a GPU the real CUDA
// graphs run (skipped without one).
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "backends/registry.h"
#ifdef EMBD_HAVE_CUDA
#include "backends/cuda/cuda_backend.h"
#endif
#include "models/forwarding_backend.h"
#include "models/runner_test_util.h"
#include "runtime/model_runner.h"
#include "runtime/recorded_shapes.h"

namespace embd {
namespace {

using runtime::RecordedShapes;
using testing::batch_series;
using testing::cpu_backend;
using testing::expect_same_rows;
using testing::random_batch;
using testing::run_pipelined;
using testing::runner_on;
using testing::TinyJina;

class NoopRecording final : public backend::Recording {};

TEST(RecordedShapes, RecordsOnTheSecondSightingAndReplaysUntilMemoryChanges) {
  RecordedShapes shapes(/*max_tokens=*/100, /*capacity=*/3);
  const RecordedShapes::Shape a{0, 50, 2, 30}, a_other_slot{1, 50, 2, 30}, big{0, 101, 1, 101};
  using A = RecordedShapes::Action;
  EXPECT_EQ(shapes.plan(big, 0), A::kRunEagerly);  // too many tokens, always
  EXPECT_EQ(shapes.plan(big, 0), A::kRunEagerly);
  EXPECT_EQ(shapes.plan(a, 0), A::kRunEagerly);  // first sighting warms buffers and plans
  EXPECT_EQ(shapes.plan(a_other_slot, 0), A::kRunEagerly);
  EXPECT_EQ(shapes.plan(a, 0), A::kRecord);
  shapes.store(a, std::make_unique<NoopRecording>());
  EXPECT_EQ(shapes.plan(a, 0), A::kReplay);
  EXPECT_EQ(shapes.recordings(), 1u);
  EXPECT_EQ(shapes.plan(a_other_slot, 0), A::kRecord);
  shapes.store(a_other_slot, nullptr);  // recording failed: eager for good
  EXPECT_EQ(shapes.plan(a_other_slot, 0), A::kRunEagerly);
  EXPECT_EQ(shapes.plan(a_other_slot, 0), A::kRunEagerly);
  // Device memory changed: recordings are stale and the shape must warm up again.
  EXPECT_EQ(shapes.plan(a, 1), A::kRunEagerly);
  EXPECT_EQ(shapes.recordings(), 0u);
  EXPECT_EQ(shapes.plan(a, 1), A::kRecord);
  shapes.store(a, std::make_unique<NoopRecording>());
  // Capacity: the fourth distinct shape drops everything.
  EXPECT_EQ(shapes.plan({0, 1, 1, 1}, 1), A::kRunEagerly);
  EXPECT_EQ(shapes.plan({0, 2, 1, 2}, 1), A::kRunEagerly);
  EXPECT_EQ(shapes.recordings(), 1u);
  EXPECT_EQ(shapes.plan({0, 3, 1, 3}, 1), A::kRunEagerly);
  EXPECT_EQ(shapes.recordings(), 0u);
  EXPECT_EQ(shapes.plan(a, 1), A::kRunEagerly);
}

// Ops recorded as closures over their arguments, replayed in order. Host offsets are swapped
// for the device ones (host memory on the CPU backend), since a replay must read the batch
// staged now, as a CUDA graph does; allocating while recording fails, as on CUDA.
class ClosureRecording final : public backend::Recording {
 public:
  std::vector<std::function<Status()>> ops;
};

class RecordingBackend final : public testing::ForwardingBackend {
 public:
  RecordingBackend(std::unique_ptr<backend::Backend> inner, bool refuse)
      : ForwardingBackend(std::move(inner)), refuse_(refuse) {}
  bool asynchronous() const override { return true; }
  bool can_record() const override { return true; }
  Result<backend::DeviceMemory> allocate(std::size_t bytes) override {
    if (recording_) return internal_error("allocate while recording");
    memory_changed();
    return inner_->allocate(bytes);
  }
  Status begin_recording() override {
    if (recording_) return internal_error("nested recording");
    ++recordings_started;
    // Refusing: the first recording cannot even start, later ones fail at the end.
    if (refuse_ && recordings_started == 1) return unsupported("this test backend cannot record now");
    recording_ = std::make_unique<ClosureRecording>();
    return ok_status();
  }
  Result<std::unique_ptr<backend::Recording>> end_recording() override {
    if (!recording_) return internal_error("end without begin");
    auto r = std::move(recording_);
    if (refuse_) return unsupported("this test backend refuses to record");
    return std::unique_ptr<backend::Recording>(std::move(r));
  }
  Status replay(const backend::Recording& r) override {
    ++replays;
    for (const auto& op : dynamic_cast<const ClosureRecording&>(r).ops) EMBD_TRY(op());
    return ok_status();
  }
  Status linear(const backend::LinearArgs& a) override {
    return run_or_record([this, a] { return inner_->linear(a); });
  }
  Status embed_layernorm(const backend::EmbedLayerNormArgs& a) override {
    return run_or_record([this, a] { return inner_->embed_layernorm(a); });
  }
  Status add_layernorm(const backend::AddLayerNormArgs& a) override {
    return run_or_record([this, a] { return inner_->add_layernorm(a); });
  }
  Status glu(const backend::GluArgs& a) override {
    return run_or_record([this, a] { return inner_->glu(a); });
  }
  Status attention(const backend::AttentionArgs& a) override {
    backend::AttentionArgs b = a;
    b.cu_seqlens_host = b.cu_seqlens;
    return run_or_record([this, b] { return inner_->attention(b); });
  }
  Status pool(const backend::PoolArgs& a) override {
    backend::PoolArgs b = a;
    b.cu_seqlens_host = b.cu_seqlens;
    return run_or_record([this, b] { return inner_->pool(b); });
  }

  int recordings_started = 0;
  int replays = 0;

 private:
  Status run_or_record(std::function<Status()> op) {
    if (!recording_) return op();
    recording_->ops.push_back(std::move(op));
    return ok_status();
  }
  bool refuse_;
  std::unique_ptr<ClosureRecording> recording_;
};

// Runs the batch series eagerly and through a RecordingBackend (refusing to record or not),
// expects the same rows, and returns the recording backend's counts {recordings, replays}.
std::pair<int, int> compare_with_eager(bool refuse) {
  const TinyJina model;
  EXPECT_TRUE(model.ok());
  if (!model.ok()) return {0, 0};
  const auto batches = batch_series(model.config.vocab_size);
  auto eager = runner_on(cpu_backend(), model, DType::kF32, 0);
  auto recording_be = std::make_unique<RecordingBackend>(cpu_backend(), refuse);
  RecordingBackend& rec = *recording_be;
  auto recorded = runner_on(std::move(recording_be), model, DType::kF32, 1024);
  EXPECT_TRUE(eager && recorded);
  if (!eager || !recorded) return {0, 0};
  const auto want = run_pipelined(*eager, batches);
  const auto got = run_pipelined(*recorded, batches);
  for (std::size_t i = 0; i < batches.size(); ++i) {
    SCOPED_TRACE("batch " + std::to_string(i));
    expect_same_rows(got[i], want[i]);
  }
  return {rec.recordings_started, rec.replays};
}

TEST(RecordedRunner, ReplaysGiveTheRowsOfEagerRuns) {
  const auto [recordings, replays] = compare_with_eager(/*refuse=*/false);
  // Per slot: 3 shapes seen 4 times before the big batch (record once, replay twice or more),
  // then the repeated shape warms up again after the buffers grew.
  EXPECT_GE(recordings, 4);
  EXPECT_GE(replays, 8);
}

TEST(RecordedRunner, ShapesThatCannotBeRecordedRunEagerly) {
  const auto [recordings, replays] = compare_with_eager(/*refuse=*/true);
  EXPECT_EQ(replays, 0);
  // Each (slot, shape) is tried once, never again after the refusal: at most 6 before the big
  // batch, and at most 2 after the memory change.
  EXPECT_GE(recordings, 1);
  EXPECT_LE(recordings, 8);
}

TEST(RecordedRunner, CudaGraphsGiveTheRowsOfEagerRuns) {
  if (backend::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA GPU visible: CUDA graph test not run";
  const TinyJina model;
  ASSERT_TRUE(model.ok());
  auto batches = batch_series(model.config.vocab_size);
  // A 505-token shape seen three times by each of the two slots, so that it is replayed too: at
  // 256 rows and more, F16/BF16 on Hopper run the fused gated GEMM, a cluster launch, in the graph.
  for (std::uint32_t round = 0; round < 6; ++round) {
    batches.push_back(random_batch({300, 200, 5}, 60 + round, model.config.vocab_size));
  }
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(dtype_name(dtype));
    auto cuda = [] { return std::move(backend::create_backends("cuda:0", {}).value().front()); };
    auto eager = runner_on(cuda(), model, dtype, 0);
    auto graphs = runner_on(cuda(), model, dtype, 1024);
    ASSERT_TRUE(eager && graphs);
    const auto want = run_pipelined(*eager, batches);
    const auto got = run_pipelined(*graphs, batches);
    for (std::size_t i = 0; i < batches.size(); ++i) {
      SCOPED_TRACE("batch " + std::to_string(i));
      expect_same_rows(got[i], want[i]);
    }
    EXPECT_GT(graphs->recorded_shapes(), 0u);
  }
}

// Device timing for the batch trace: without it no batch has a span; with it every pipelined batch
// has one, ordered and not overlapping the next one (the device runs them in order), eager and
// replayed alike; the CPU has no device clock.
TEST(DeviceTiming, SpansFollowTheDeviceOrder) {
  const TinyJina model;
  ASSERT_TRUE(model.ok());
  auto cpu = runner_on(cpu_backend(), model, DType::kF32, 0);
  ASSERT_TRUE(cpu);
  EXPECT_FALSE(cpu->enable_device_timing());
  if (backend::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA GPU visible: device timing not run";
  const auto batches = batch_series(model.config.vocab_size);
  auto cuda = std::move(backend::create_backends("cuda:0", {}).value().front());
  auto runner = runner_on(std::move(cuda), model, DType::kF16, 1024);
  ASSERT_TRUE(runner);
  std::vector<std::optional<runtime::BatchRunner::DeviceSpan>> spans;
  std::span<const float> rows;
  ASSERT_TRUE(runner->start(batches[0]).ok());
  ASSERT_TRUE(runner->finish(rows).ok());
  EXPECT_FALSE(runner->device_span().has_value());  // not asked for yet
  ASSERT_TRUE(runner->enable_device_timing());
  for (std::size_t i = 0; i < batches.size(); ++i) {
    if (i >= 2) {
      ASSERT_TRUE(runner->finish(rows).ok());
      spans.push_back(runner->device_span());
    }
    ASSERT_TRUE(runner->start(batches[i]).ok());
  }
  for (int k = 0; k < 2; ++k) {
    ASSERT_TRUE(runner->finish(rows).ok());
    spans.push_back(runner->device_span());
  }
  ASSERT_EQ(spans.size(), batches.size());
  for (std::size_t i = 0; i < spans.size(); ++i) {
    SCOPED_TRACE("batch " + std::to_string(i));
    ASSERT_TRUE(spans[i].has_value());
    EXPECT_GE(spans[i]->begin, 0.0);
    EXPECT_LT(spans[i]->begin, spans[i]->end);
    if (i > 0) {
      EXPECT_LE(spans[i - 1]->end, spans[i]->begin + 1e-6);
    }
  }
}

// Early launch (programmatic dependent launch, CudaBackendOptions::early_launch) changes when
// kernels start, never what they compute: a model of the published small-en shape, so that every
// kernel that launches early runs (tensor-core attention, the fused Hopper GEMMs, the LayerNorms),
// gives the same rows with it on and off, eagerly and replayed from CUDA graphs.
TEST(EarlyLaunch, GivesTheRowsOfStreamOrder) {
#ifdef EMBD_HAVE_CUDA
  if (backend::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA GPU visible: early launch test not run";
  const testing::SmallEnModel model("early-launch");
  ASSERT_TRUE(model.ok()) << model.written.to_string();
  const auto batches = testing::short_and_long_batches(model.config->vocab_size);
  for (DType dtype : {DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(dtype_name(dtype));
    auto runner = [&](bool early) {
      backend::cuda::CudaBackendOptions options;
      options.early_launch = early;
      return testing::cuda_runner(model, dtype, options);
    };
    auto in_order = runner(false);
    auto early = runner(true);
    ASSERT_TRUE(in_order && early);
    const auto want = run_pipelined(*in_order, batches);
    const auto got = run_pipelined(*early, batches);
    for (std::size_t i = 0; i < batches.size(); ++i) {
      SCOPED_TRACE("batch " + std::to_string(i));
      ASSERT_EQ(got[i], want[i]);  // bit for bit: the same kernels on the same data
    }
    EXPECT_GT(early->recorded_shapes(), 0u);
  }
#else
  GTEST_SKIP() << "built without CUDA: early launch test not run";
#endif
}

}  // namespace
}  // namespace embd
