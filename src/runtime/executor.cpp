#include "runtime/executor.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <exception>
#include <new>
#include <optional>
#include <utility>
#include <vector>

#include "core/thread_name.h"
#include "core/timer_slack.h"

namespace embd::runtime {

Executor::Executor(Scheduler& scheduler, RunnerFactory factory, std::string name,
                   ClassMask classes, std::shared_ptr<BatchTrace> trace)
    : scheduler_(scheduler), name_(std::move(name)), classes_(classes), trace_(std::move(trace)) {
  std::promise<Status> ready;
  ready_ = ready.get_future().share();
  thread_ = std::jthread([this, f = std::move(factory), p = std::move(ready)](
                             std::stop_token stop) mutable {
    thread_main(std::move(stop), std::move(f), std::move(p));
  });
}

Executor::~Executor() {
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
}

void Executor::thread_main(std::stop_token stop, RunnerFactory factory, std::promise<Status> ready) {
  name_thread(name_);
  set_timer_slack(std::chrono::microseconds(1));  // the scheduler's short timed waits
  std::unique_ptr<BatchRunner> runner;
  Status status;
  try {
    auto created = factory();
    if (!created.ok()) {
      status = created.status();
    } else if (*created == nullptr) {
      status = internal_error("runner factory returned no runner");
    } else {
      runner = std::move(created).value();
    }
  } catch (const std::exception& e) {
    status = internal_error(std::string("runner factory threw: ") + e.what());
  }
  if (status.ok() && runner->hidden_size() != scheduler_.hidden_size()) {
    status = internal_error("runner produces rows of " + std::to_string(runner->hidden_size()) +
                            " floats, the scheduler expects " +
                            std::to_string(scheduler_.hidden_size()));
  }
  if (!status.ok()) {
    runner.reset();  // destroyed on this thread, like every runner
    ready.set_value(status.with_context(name_));
    return;
  }
  if (trace_) (void)runner->enable_device_timing();
  ready.set_value(ok_status());
  serve(stop, *runner);
  runner.reset();
}

namespace {

// Runs a runner call; a stray exception (bad_alloc, ...) becomes the Status of that call, so it
// reaches the requests of its batch instead of ending the thread with futures unresolved.
template <typename Call>
Status guarded(Call&& call) {
  try {
    return call();
  } catch (const std::bad_alloc&) {
    return Status(ErrorCode::kOutOfMemory, "out of host memory while running the batch");
  } catch (const std::exception& e) {
    return internal_error(std::string("batch runner threw: ") + e.what());
  }
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

void Executor::hand_over(ClassMask classes) {
  // Spill first: a waiter sleeps on the union of both masks, which must not shrink meanwhile.
  spill_.fetch_or(static_cast<ClassMask>(classes & classes_.load(std::memory_order_relaxed)),
                  std::memory_order_relaxed);
  classes_.fetch_and(static_cast<ClassMask>(~classes), std::memory_order_relaxed);
}

std::optional<ScheduledBatch> Executor::take(std::stop_token stop, bool idle) {
  // Only an idle executor waits; a busy one (a batch in flight) asks without waiting.
  return scheduler_.next_batch(stop, /*wait=*/idle, classes_, idle ? spill_ : no_spill_);
}

void Executor::deliver(ScheduledBatch& batch, Status status, std::span<const float> pooled,
                       double seconds) {
  if (!status.ok()) {
    status = status.with_context("device " + device_ + ", batch of " +
                                 std::to_string(batch.packed.sequences()) + " texts");
  }
  scheduler_.complete(batch, status, pooled, seconds);
}

void Executor::trace(const ScheduledBatch& batch, const BatchRunner& runner, const double (&times)[3],
                     bool ok) {
  if (!trace_) return;
  BatchTraceRecord r;
  r.executor = name_;
  r.tokens = batch.packed.tokens();
  r.sequences = batch.packed.sequences();
  r.max_seqlen = static_cast<std::size_t>(batch.packed.max_seqlen);
  r.taken = times[0];
  r.enqueued = times[1];
  r.finished = times[2];
  r.delivered = trace_->now();
  if (auto span = runner.device_span()) {
    r.device_begin = span->begin;
    r.device_end = span->end;
  }
  r.ok = ok;
  trace_->add(std::move(r));
}

void Executor::serve(std::stop_token stop, BatchRunner& runner) {
  device_ = runner.device_name();
  if (runner.pipeline_depth() > 1) {
    serve_pipelined(stop, runner);
    return;
  }
  std::vector<float> pooled;
  const auto now = [&] { return trace_ ? trace_->now() : 0.0; };
  while (auto batch = take(stop, /*idle=*/true)) {
    const double taken = now();
    const auto start = Clock::now();
    const Status status = guarded([&] { return runner.run(batch->packed, pooled); });
    const double finished = now();
    deliver(*batch, status, pooled, seconds_since(start));
    trace(*batch, runner, {taken, taken, finished}, status.ok());
  }
}

// Keeps up to pipeline_depth() batches on the device: the next batch is taken from the queue
// when the newest one reaches its last layer (so a query arriving meanwhile still joins it), is
// enqueued behind it, and only then is the oldest finished and delivered, while the device
// works on the next. A batch's device time is counted from its start or from the previous
// delivery, whichever is later, so overlapping batches are not counted twice.
void Executor::serve_pipelined(std::stop_token stop, BatchRunner& runner) {
  struct InFlight {
    ScheduledBatch batch;
    Clock::time_point started;
    double taken = 0, enqueued = 0;  // trace times
  };
  const auto now = [&] { return trace_ ? trace_->now() : 0.0; };
  const std::size_t depth = runner.pipeline_depth();
  std::deque<InFlight> flight;
  std::span<const float> pooled;
  Clock::time_point last_delivery = Clock::now();
  for (;;) {
    std::optional<ScheduledBatch> next;
    if (flight.empty()) {
      next = take(stop, /*idle=*/true);
      if (!next) return;  // stopped, nothing in flight
    } else if (flight.size() < depth) {
      // An error here is the device's and surfaces again in finish() for the batch it hit.
      (void)guarded([&] { return runner.wait_almost_done(); });
      next = take(stop, /*idle=*/false);
    }
    bool started = false;
    if (next) {
      const double taken = now();
      const auto t = Clock::now();
      const Status status = guarded([&] { return runner.start(next->packed); });
      if (status.ok()) {
        flight.push_back({std::move(*next), t, taken, now()});
        started = true;
      } else {
        deliver(*next, status, {}, seconds_since(t));
      }
    }
    if (!flight.empty() && (flight.size() >= depth || !started)) {
      InFlight& oldest = flight.front();
      const Status status = guarded([&] { return runner.finish(pooled); });
      const double finished = now();
      const auto from = std::max(oldest.started, last_delivery);
      last_delivery = Clock::now();
      deliver(oldest.batch, status, pooled, std::chrono::duration<double>(last_delivery - from).count());
      trace(oldest.batch, runner, {oldest.taken, oldest.enqueued, finished}, status.ok());
      flight.pop_front();
    }
  }
}

}  // namespace embd::runtime
