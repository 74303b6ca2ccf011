// Concurrent batches (LoadOptions::concurrent_batches): a ModelRunner on a backend with two
// streams runs each pipeline slot on its own stream with its own activations. On the CPU a test
// backend plays an asynchronous two-stream device and checks that the runner keeps the slots'
// work apart; on a GPU the real streams run at once and must give the rows of one stream, bit for
// bit (skipped without one). Also Backend::use_stream()'s contract and per-stream fences.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
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

namespace embd {
namespace {

using testing::batch_series;
using testing::cpu_backend;
using testing::random_batch;
using testing::run_pipelined;
using testing::runner_on;
using testing::TinyJina;

// The CPU's kernels behind the interface of an asynchronous device with two streams: it notes
// which stream each op was enqueued on and which activation buffers each stream wrote.
class TwoStreamBackend final : public testing::ForwardingBackend {
 public:
  using ForwardingBackend::ForwardingBackend;
  bool asynchronous() const override { return true; }
  std::size_t streams() const override { return 2; }
  Status use_stream(std::size_t stream) override {
    if (stream >= 2) return Backend::use_stream(stream);
    current = stream;
    switches.push_back(stream);
    return ok_status();
  }
  Status embed_layernorm(const backend::EmbedLayerNormArgs& a) override {
    outputs[current].insert(a.out.data);
    return ForwardingBackend::embed_layernorm(a);
  }

  std::size_t current = 0;
  std::vector<std::size_t> switches;          // every use_stream() that was allowed
  std::map<std::size_t, std::set<void*>> outputs;  // per stream: the embedding outputs it wrote
};

TEST(ConcurrentBatches, EachSlotRunsOnItsStreamWithItsOwnActivations) {
  const TinyJina model;
  ASSERT_TRUE(model.ok());
  const auto batches = batch_series(model.config.vocab_size);
  auto plain = runner_on(cpu_backend(), model, DType::kF32, 0);
  auto be = std::make_unique<TwoStreamBackend>(cpu_backend());
  TwoStreamBackend& streams = *be;
  auto concurrent = runner_on(std::move(be), model, DType::kF32, 0);
  ASSERT_TRUE(plain && concurrent);
  ASSERT_EQ(concurrent->pipeline_depth(), 2u);
  const auto want = run_pipelined(*plain, batches);
  const auto got = run_pipelined(*concurrent, batches);
  for (std::size_t i = 0; i < batches.size(); ++i) {
    SCOPED_TRACE("batch " + std::to_string(i));
    testing::expect_same_rows(got[i], want[i]);
  }
  // Batches alternate between the streams, one after the other.
  ASSERT_GE(streams.switches.size(), batches.size());
  std::size_t expected = 0;
  for (std::size_t i = 0; i < streams.switches.size(); i += 2) {  // start() and enqueue() each select
    EXPECT_EQ(streams.switches[i], expected) << i;
    expected ^= 1;
  }
  // No activation buffer is written by both streams.
  ASSERT_EQ(streams.outputs.size(), 2u);
  for (void* p : streams.outputs[0]) EXPECT_EQ(streams.outputs[1].count(p), 0u);
}

TEST(ConcurrentBatches, OneStreamBackendsRefuseOthers) {
  auto cpu = cpu_backend();
  EXPECT_EQ(cpu->streams(), 1u);
  EXPECT_TRUE(cpu->use_stream(0).ok());
  const Status s = cpu->use_stream(1);
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(s.message().find("no stream 1"), std::string::npos) << s.message();
}

TEST(ConcurrentBatches, CudaStreamsHaveTheirOwnFences) {
#ifdef EMBD_HAVE_CUDA
  if (backend::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA GPU visible: CUDA streams not tested";
  backend::cuda::CudaBackendOptions options;
  options.streams = 2;
  auto made = backend::cuda::make_cuda_backend(0, options);
  ASSERT_TRUE(made.ok()) << made.status().to_string();
  backend::Backend& be = **made;
  EXPECT_EQ(be.streams(), 2u);
  EXPECT_EQ(be.use_stream(2).code(), ErrorCode::kInvalidArgument);
  // A fence on each stream, interleaved past the ring's size: each waits for its own stream.
  std::vector<backend::Fence> fences;
  std::vector<float> host(1024, 1.0f), back(1024, 0.0f);
  auto mem = be.allocate(host.size() * sizeof(float));
  ASSERT_TRUE(mem.ok());
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(be.use_stream(static_cast<std::size_t>(i % 2)).ok());
    host[0] = static_cast<float>(i);
    ASSERT_TRUE(be.upload(mem->get(), host.data(), host.size() * sizeof(float)).ok());
    auto f = be.fence();
    ASSERT_TRUE(f.ok());
    fences.push_back(*f);
  }
  std::set<backend::Fence> distinct(fences.begin(), fences.end());
  EXPECT_EQ(distinct.size(), fences.size());
  for (backend::Fence f : fences) EXPECT_TRUE(be.wait(f).ok());
  EXPECT_EQ(be.wait(fences.back() + 2 * backend::cuda::kMaxStreams).code(), ErrorCode::kInternal);
  EXPECT_EQ(be.wait(3).code(), ErrorCode::kInternal);  // a stream this backend does not have
  ASSERT_TRUE(be.synchronize().ok());
  ASSERT_TRUE(be.download(back.data(), mem->get(), back.size() * sizeof(float)).ok());
  EXPECT_EQ(back[0], 39.0f);
#else
  GTEST_SKIP() << "built without CUDA: CUDA streams not tested";
#endif
}

// Two batches at once on a GPU give exactly the rows of one stream: the same kernels on the same
// data, eager and replayed from CUDA graphs, short and long batches of the published small-en
// shape (every fused kernel, attention's tile skipping), in every dtype.
TEST(ConcurrentBatches, CudaStreamsGiveTheRowsOfOneStream) {
#ifdef EMBD_HAVE_CUDA
  if (backend::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA GPU visible: concurrent batches not run";
  const testing::SmallEnModel model("concurrent");
  ASSERT_TRUE(model.ok()) << model.written.to_string();
  const auto vocab = model.config->vocab_size;
  std::vector<runtime::PackedBatch> batches = batch_series(vocab);
  for (auto& b : testing::short_and_long_batches(vocab)) batches.push_back(std::move(b));
  for (std::uint32_t round = 0; round < 6; ++round) {  // full-size batches: 5,080 tokens
    batches.push_back(random_batch(std::vector<std::int32_t>(40, 127), 90 + round, vocab));
  }
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(dtype_name(dtype));
    auto runner = [&](std::size_t streams) {
      backend::cuda::CudaBackendOptions options;
      options.streams = streams;
      return testing::cuda_runner(model, dtype, options);
    };
    auto one = runner(1);
    auto two = runner(2);
    ASSERT_TRUE(one && two);
    const auto want = run_pipelined(*one, batches);
    for (int pass = 0; pass < 2; ++pass) {  // the second pass replays what the first recorded
      const auto got = run_pipelined(*two, batches);
      for (std::size_t i = 0; i < batches.size(); ++i) {
        SCOPED_TRACE("pass " + std::to_string(pass) + ", batch " + std::to_string(i));
        ASSERT_EQ(got[i], want[i]);
      }
    }
    EXPECT_GT(two->recorded_shapes(), 0u);
  }
#else
  GTEST_SKIP() << "built without CUDA: concurrent batches not run";
#endif
}

}  // namespace
}  // namespace embd
