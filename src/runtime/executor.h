// Executor: the one thread that owns a device. It creates its BatchRunner on that thread (so
// device state such as a CUDA context is made and used by one thread only, DESIGN principle 3),
// then loops: take a batch from the Scheduler, run it, deliver the result. With a runner that
// pipelines (an asynchronous device), the next batch is enqueued before the current one is
// delivered, so the device does not wait for the host between batches.
//
// Ownership: owns its thread and, on that thread, the runner. Borrows the Scheduler, which must
// outlive it (destroy executors first, or at least before the scheduler).
//
// Thread-safety: wait_ready(), name() and hand_over() may be called from any thread. The
// destructor requests stop, lets the batch in flight finish and be delivered, then joins.
//
// Errors: a factory error (or a runner whose hidden size does not match the scheduler's) is
// returned by wait_ready() and the thread ends. A runner error (or exception) fails exactly the
// requests of that batch, with the device named in the message; the executor goes on.
#pragma once

#include <atomic>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "runtime/batch_runner.h"
#include "runtime/batch_trace.h"
#include "runtime/scheduler.h"

namespace embd::runtime {

using RunnerFactory = std::function<Result<std::unique_ptr<BatchRunner>>()>;

class Executor {
 public:
  // Starts the thread at once. `name` labels the device in factory errors, before the runner
  // (whose device_name() labels batch errors) exists: pass the backend's name ("cuda:1").
  // The executor takes work of the `classes` only (see Scheduler::next_batch). With a `trace`,
  // every batch adds a record to it (and the runner's device timing is turned on).
  Executor(Scheduler& scheduler, RunnerFactory factory, std::string name = "device",
           ClassMask classes = kAllClasses, std::shared_ptr<BatchTrace> trace = nullptr);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Blocks until the runner was created (OK) or the factory failed (its error, prefixed with the
  // device name).
  Status wait_ready() const { return ready_.get(); }
  const std::string& name() const { return name_; }
  // Asks the thread to end after the batch in flight; the destructor joins.
  void request_stop() { thread_.request_stop(); }
  // Hands work of `classes` over to another executor from now on, even while waiting for work
  // (the engine does this for queries on a GPU's first executor once that GPU's query lane is
  // up). This one still takes such work when it has nothing of its own in flight or queued and
  // the work has waited SchedulerOptions::spill_after (the other executor is busy), so a burst
  // of queries gets both; it never mixes the two in one batch.
  void hand_over(ClassMask classes);

 private:
  void thread_main(std::stop_token stop, RunnerFactory factory, std::promise<Status> ready);
  void serve(std::stop_token stop, BatchRunner& runner);
  void serve_pipelined(std::stop_token stop, BatchRunner& runner);
  // The next batch of this executor's classes (Scheduler::next_batch). `idle`: nothing in flight,
  // so handed-over work may be taken too (it would otherwise run beside this executor's own).
  std::optional<ScheduledBatch> take(std::stop_token stop, bool idle);
  // Hands a batch's outcome to the scheduler, naming the device and batch in an error.
  void deliver(ScheduledBatch& batch, Status status, std::span<const float> pooled, double seconds);
  // Adds a batch's record to the trace, if there is one. `times` are taken, enqueued, finished.
  void trace(const ScheduledBatch& batch, const BatchRunner& runner, const double (&times)[3], bool ok);

  Scheduler& scheduler_;
  const std::string name_;
  std::atomic<ClassMask> classes_;
  std::atomic<ClassMask> spill_{0};  // classes handed over (hand_over): taken when idle
  const std::atomic<ClassMask> no_spill_{0};
  const std::shared_ptr<BatchTrace> trace_;
  std::string device_;  // the runner's device name; set and used on the executor thread
  std::shared_future<Status> ready_;
  std::jthread thread_;  // last: starts once every other member is initialised
};

}  // namespace embd::runtime
