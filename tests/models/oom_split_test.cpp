// ModelRunner: a batch that does not fit the device is split and retried (same results, no
// error), pipelined batches (start / finish, as on a GPU) give the same rows as run(), and the
// warm-up leaves the runner as it found it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "backends/registry.h"
#include "common/golden.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "models/forwarding_backend.h"
#include "models/runner_test_util.h"
#include "runtime/model_runner.h"

namespace embd {
namespace {

using testing::expect_same_rows;

// finish(), with the rows copied out (they are only lent until the runner's next call).
Status finish_into(runtime::BatchRunner& runner, std::vector<float>& out) {
  std::span<const float> rows;
  const Status s = runner.finish(rows);
  out.assign(rows.begin(), rows.end());
  return s;
}
using testing::golden_batch;
using testing::TinyJina;

// Forwards to the CPU backend but refuses any allocation above `limit` bytes, like a full GPU;
// `asynchronous` makes ModelRunner pipeline on it.
class LimitedBackend final : public testing::ForwardingBackend {
 public:
  LimitedBackend(std::unique_ptr<backend::Backend> inner, std::shared_ptr<std::size_t> limit,
                 bool asynchronous)
      : ForwardingBackend(std::move(inner)), limit_(std::move(limit)), asynchronous_(asynchronous) {}
  bool asynchronous() const override { return asynchronous_; }
  Result<backend::DeviceMemory> allocate(std::size_t bytes) override {
    if (bytes > *limit_) return Status(ErrorCode::kOutOfMemory, "over the test limit");
    return inner_->allocate(bytes);
  }

 private:
  std::shared_ptr<std::size_t> limit_;
  bool asynchronous_;
};

std::unique_ptr<runtime::ModelRunner> make_runner(const TinyJina& model, std::size_t limit,
                                                  bool asynchronous = false) {
  const io::ModelConfig& c = model.config;
  const io::WeightSet& w = **model.weights;
  auto be = std::move(backend::create_backends("cpu", {}).value().front());
  // The limit applies to activations only: weights load first with no limit.
  auto shared_limit = std::make_shared<std::size_t>(SIZE_MAX);
  std::unique_ptr<backend::Backend> limited = std::make_unique<LimitedBackend>(std::move(be), shared_limit, asynchronous);
  auto r = runtime::ModelRunner::create(std::move(limited), c, w, DType::kF32);
  *shared_limit = limit;
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? std::move(r).value() : nullptr;
}

TEST(OutOfMemory, BatchIsSplitAndRetried) {
  const TinyJina model;
  ASSERT_TRUE(model.ok());
  const runtime::PackedBatch batch = golden_batch();
  // The widest activation is [T, 2 * 128] floats: 1 KiB per token. 4 MiB fits the longest text
  // (3000 tokens) but not the whole batch (7858 tokens).
  auto small = make_runner(model, 4u << 20);
  auto big = make_runner(model, std::size_t{1} << 40);
  ASSERT_TRUE(small && big);
  std::vector<float> split, whole;
  Status s = small->run(batch, split);
  ASSERT_TRUE(s.ok()) << s.to_string();
  ASSERT_TRUE(big->run(batch, whole).ok());
  expect_same_rows(split, whole);

  // A single sequence that cannot fit is reported, not crashed on.
  auto tiny = make_runner(model, 64u << 10);
  std::vector<float> out;
  const Status too_big = tiny->run(batch, out);
  EXPECT_EQ(too_big.code(), ErrorCode::kOutOfMemory) << too_big.to_string();
}

TEST(Pipeline, StartedBatchesFinishInOrderWithRunResults) {
  const TinyJina model;
  ASSERT_TRUE(model.ok());
  const runtime::PackedBatch a = golden_batch(), b = golden_batch(1);
  auto sync = make_runner(model, std::size_t{1} << 40);
  auto piped = make_runner(model, std::size_t{1} << 40, /*asynchronous=*/true);
  ASSERT_TRUE(sync && piped);
  EXPECT_EQ(sync->pipeline_depth(), 1u);
  ASSERT_EQ(piped->pipeline_depth(), 2u);
  std::vector<float> want_a, want_b, got;
  ASSERT_TRUE(sync->run(a, want_a).ok());
  ASSERT_TRUE(sync->run(b, want_b).ok());
  for (int round = 0; round < 2; ++round) {  // slots are reused
    ASSERT_TRUE(piped->start(a).ok());
    ASSERT_TRUE(piped->start(b).ok());
    EXPECT_EQ(piped->start(a).code(), ErrorCode::kInternal);  // both slots busy
    EXPECT_TRUE(piped->wait_almost_done().ok());
    ASSERT_TRUE(finish_into(*piped, got).ok());
    expect_same_rows(got, want_a);
    ASSERT_TRUE(finish_into(*piped, got).ok());
    expect_same_rows(got, want_b);
  }
  EXPECT_EQ(finish_into(*piped, got).code(), ErrorCode::kInternal);  // nothing in flight
}

TEST(Pipeline, StartOutOfMemorySplitsSynchronously) {
  const TinyJina model;
  ASSERT_TRUE(model.ok());
  const runtime::PackedBatch batch = golden_batch();
  auto big = make_runner(model, std::size_t{1} << 40);
  auto small = make_runner(model, 4u << 20, /*asynchronous=*/true);
  ASSERT_TRUE(small && big);
  std::vector<float> whole, got;
  ASSERT_TRUE(big->run(batch, whole).ok());
  ASSERT_TRUE(small->start(batch).ok());
  ASSERT_TRUE(finish_into(*small, got).ok());
  expect_same_rows(got, whole);
}

TEST(WarmUp, SizesCoverEveryGemmBucket) {
  EXPECT_EQ(runtime::ModelRunner::warm_up_sizes(100),
            (std::vector<std::int64_t>{8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 100}));
  EXPECT_EQ(runtime::ModelRunner::warm_up_sizes(1), (std::vector<std::int64_t>{1}));
  const auto sizes = runtime::ModelRunner::warm_up_sizes(16384);
  EXPECT_EQ(sizes.front(), 8);
  EXPECT_EQ(sizes.back(), 16384);
  EXPECT_TRUE(std::is_sorted(sizes.begin(), sizes.end()));
  EXPECT_EQ(sizes.size(), 45u);  // four per power of two from 8 to 8192, then 16384
}

TEST(WarmUp, LeavesTheRowsUnchanged) {
  const TinyJina model;
  ASSERT_TRUE(model.ok());
  const runtime::PackedBatch batch = golden_batch();
  auto fresh = make_runner(model, std::size_t{1} << 40);
  auto sync = make_runner(model, std::size_t{1} << 40);
  auto piped = make_runner(model, std::size_t{1} << 40, /*asynchronous=*/true);
  ASSERT_TRUE(fresh && sync && piped);
  std::vector<float> want, got;
  ASSERT_TRUE(fresh->run(batch, want).ok());
  ASSERT_TRUE(sync->warm_up(700, 300).ok());
  ASSERT_TRUE(sync->run(batch, got).ok());
  expect_same_rows(got, want);
  ASSERT_TRUE(piped->warm_up(700, 300).ok());
  ASSERT_TRUE(piped->start(batch).ok());  // nothing left in flight by the warm-up
  ASSERT_TRUE(finish_into(*piped, got).ok());
  expect_same_rows(got, want);
  EXPECT_EQ(finish_into(*piped, got).code(), ErrorCode::kInternal);
}

TEST(WarmUp, RunsPastTheMemoryLimitBySplitting) {
  const TinyJina model;
  ASSERT_TRUE(model.ok());
  // 1 KiB of activations per token: batches past ~4000 tokens are split (as real ones would be).
  auto small = make_runner(model, 4u << 20, /*asynchronous=*/true);
  ASSERT_TRUE(small);
  const Status s = small->warm_up(8192, 512);
  ASSERT_TRUE(s.ok()) << s.to_string();
  std::vector<float> rows;
  ASSERT_TRUE(small->run(golden_batch(), rows).ok());  // usable, nothing in flight
}

}  // namespace
}  // namespace embd
