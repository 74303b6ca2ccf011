// Test doubles for the scheduler: a BatchRunner whose pooled row is a deterministic function of
// one sequence's ids alone (so a text's embedding is bit-identical whatever batch it ran in),
// with simulated device time per token, fault injection, an optional gate that holds batches
// back, and a log of every batch any runner saw.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "runtime/batch_runner.h"
#include "runtime/executor.h"
#include "runtime/postprocess.h"
#include "runtime/scheduler.h"

namespace embd::runtime::testing {

// Row of the fake model for one sequence: mean over tokens of a hash-derived value per dimension.
// All-zero ids give a zero row (for the zero-norm guard).
inline std::vector<float> fake_row(const std::vector<std::int32_t>& ids, std::size_t hidden) {
  std::vector<float> row(hidden, 0.0f);
  for (std::size_t j = 0; j < ids.size(); ++j) {
    if (ids[j] == 0) continue;
    for (std::size_t k = 0; k < hidden; ++k) {
      const std::uint32_t h = static_cast<std::uint32_t>(ids[j]) * 2654435761u +
                              static_cast<std::uint32_t>(j) * 40503u +
                              static_cast<std::uint32_t>(k) * 97u;
      row[k] += static_cast<float>(h % 2001u) / 1000.0f - 1.0f;
    }
  }
  for (float& v : row) v /= static_cast<float>(ids.size());
  return row;
}

// What the scheduler must return for one text embedded alone.
inline std::vector<float> expected_row(const std::vector<std::int32_t>& ids, std::size_t hidden,
                                       std::size_t dimensions, bool normalize) {
  auto row = fake_row(ids, hidden);
  row.resize(dimensions == 0 ? hidden : dimensions);
  if (normalize) l2_normalize_rows(row, 1, row.size());
  return row;
}

// Batches seen by all runners of a test, and a gate that can hold every batch at its start.
class BatchLog {
 public:
  struct Entry {
    std::string device;
    std::vector<std::vector<std::int32_t>> sequences;
    std::size_t tokens = 0;
  };

  // Called by a runner at the start of a batch: records it, then waits while the gate is closed.
  void enter(Entry entry) {
    std::unique_lock lock(mu_);
    entries_.push_back(std::move(entry));
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
  }
  void close() {
    std::lock_guard lock(mu_);
    open_ = false;
  }
  void open() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  // Blocks until at least n batches have started.
  void wait_started(std::size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return entries_.size() >= n; });
  }
  std::vector<Entry> entries() const {
    std::lock_guard lock(mu_);
    return entries_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;             // guarded by mu_
  std::vector<Entry> entries_;   // guarded by mu_
};

struct FakeConfig {
  std::size_t hidden = 8;
  std::chrono::microseconds per_token{0};  // simulated device time
  std::int32_t poison = -1;                // a batch holding this id fails with kDeviceError
  std::int32_t throw_on = -1;              // a batch holding this id throws
  std::string device = "fake";
  // > 1: the runner pipelines like ModelRunner on a GPU: start() computes the rows (and passes
  // the log gate), finish() sleeps the simulated device time and returns them, oldest first.
  std::size_t pipeline = 1;
};

class FakeRunner final : public BatchRunner {
 public:
  FakeRunner(FakeConfig config, std::shared_ptr<BatchLog> log)
      : config_(std::move(config)), log_(std::move(log)), owner_(std::this_thread::get_id()) {}

  Status run(const PackedBatch& batch, std::vector<float>& pooled) override {
    EMBD_TRY(compute(batch, pooled));
    if (config_.per_token.count() > 0) std::this_thread::sleep_for(config_.per_token * batch.tokens());
    return ok_status();
  }

  std::size_t pipeline_depth() const override { return config_.pipeline; }
  Status start(const PackedBatch& batch) override {
    if (in_flight_.size() >= config_.pipeline) return internal_error("start() past the pipeline depth");
    Started s;
    s.tokens = batch.tokens();
    s.status = compute(batch, s.rows);  // may throw, like run(): the batch did not start
    in_flight_.push_back(std::move(s));
    return ok_status();
  }
  Status wait_almost_done() override {
    if (std::this_thread::get_id() != owner_) return internal_error("runner used off its thread");
    return ok_status();
  }
  Status finish(std::span<const float>& rows) override {
    if (std::this_thread::get_id() != owner_) return internal_error("runner used off its thread");
    if (in_flight_.empty()) return internal_error("finish() without a started batch");
    Started s = std::move(in_flight_.front());
    in_flight_.pop_front();
    if (config_.per_token.count() > 0) std::this_thread::sleep_for(config_.per_token * s.tokens);
    finished_rows_ = std::move(s.rows);  // valid until the next call, as BatchRunner says
    rows = finished_rows_;
    return s.status;
  }

  std::size_t hidden_size() const override { return config_.hidden; }
  std::string device_name() const override { return config_.device; }

 private:
  struct Started {
    std::size_t tokens = 0;
    Status status;
    std::vector<float> rows;
  };
  std::vector<float> finished_rows_;

  // Checks the batch, logs it (waiting at the log's gate), and computes its rows.
  Status compute(const PackedBatch& batch, std::vector<float>& pooled) {
    // Principle 3: a runner is used only on the thread that created it.
    if (std::this_thread::get_id() != owner_) return internal_error("runner used off its thread");
    if (batch.cu_seqlens.size() != batch.sequences() + 1 || batch.cu_seqlens.front() != 0 ||
        static_cast<std::size_t>(batch.cu_seqlens.back()) != batch.ids.size()) {
      return internal_error("malformed packed batch");
    }
    BatchLog::Entry entry{config_.device, {}, batch.tokens()};
    for (std::size_t i = 0; i < batch.sequences(); ++i) {
      entry.sequences.emplace_back(batch.ids.begin() + batch.cu_seqlens[i],
                                   batch.ids.begin() + batch.cu_seqlens[i + 1]);
    }
    const auto sequences = entry.sequences;
    if (log_) log_->enter(std::move(entry));
    for (const auto& s : sequences) {
      for (std::int32_t id : s) {
        if (id == config_.poison) return device_error("injected fault");
        if (id == config_.throw_on) throw std::runtime_error("injected exception");
      }
    }
    pooled.resize(sequences.size() * config_.hidden);
    for (std::size_t i = 0; i < sequences.size(); ++i) {
      const auto row = fake_row(sequences[i], config_.hidden);
      std::copy(row.begin(), row.end(), pooled.begin() + i * config_.hidden);
    }
    return ok_status();
  }

  FakeConfig config_;
  std::shared_ptr<BatchLog> log_;
  std::thread::id owner_;
  std::deque<Started> in_flight_;
};

inline RunnerFactory fake_factory(FakeConfig config, std::shared_ptr<BatchLog> log) {
  return [config, log]() -> Result<std::unique_ptr<BatchRunner>> {
    return std::unique_ptr<BatchRunner>(std::make_unique<FakeRunner>(config, log));
  };
}

// A scheduler with `executors` fake devices; tears down in the required order (executors first)
// and never leaves the gate closed.
struct Harness {
  explicit Harness(SchedulerOptions options, FakeConfig config = {}, int executors = 1)
      : Harness(options, config, std::vector<ClassMask>(static_cast<std::size_t>(executors), kAllClasses)) {}
  // One executor per entry of `classes`, taking work of those classes (Scheduler::next_batch).
  Harness(SchedulerOptions options, FakeConfig config, const std::vector<ClassMask>& classes)
      : log(std::make_shared<BatchLog>()),
        scheduler(std::make_unique<Scheduler>(options, config.hidden)),
        hidden(config.hidden) {
    for (std::size_t i = 0; i < classes.size(); ++i) {
      FakeConfig c = config;
      c.device = config.device + ":" + std::to_string(i);
      pool.push_back(std::make_unique<Executor>(*scheduler, fake_factory(c, log), c.device, classes[i]));
    }
    for (auto& e : pool) EMBD_CHECK(e->wait_ready().ok());
  }
  ~Harness() {
    log->open();
    pool.clear();
    scheduler.reset();
  }

  std::shared_ptr<BatchLog> log;
  std::unique_ptr<Scheduler> scheduler;
  std::vector<std::unique_ptr<Executor>> pool;
  std::size_t hidden;
};

// `n` token ids, all equal to `tag` except the position-dependent tail, so tests can tell texts
// apart by their first id.
inline std::vector<std::int32_t> text(std::int32_t tag, std::size_t n) {
  std::vector<std::int32_t> ids(n);
  for (std::size_t i = 0; i < n; ++i) ids[i] = i == 0 ? tag : static_cast<std::int32_t>(1000 + i % 97);
  return ids;
}

}  // namespace embd::runtime::testing
