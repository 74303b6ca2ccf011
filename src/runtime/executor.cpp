#include "runtime/executor.h"

#include <chrono>
#include <exception>
#include <new>
#include <utility>
#include <vector>

namespace embd::runtime {

Executor::Executor(Scheduler& scheduler, RunnerFactory factory, std::string name)
    : scheduler_(scheduler), name_(std::move(name)) {
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
  ready.set_value(ok_status());
  serve(stop, *runner);
  runner.reset();
}

void Executor::serve(std::stop_token stop, BatchRunner& runner) {
  const std::string device = runner.device_name();
  std::vector<float> pooled;
  while (auto batch = scheduler_.next_batch(stop)) {
    const auto start = std::chrono::steady_clock::now();
    Status status;
    // A runner must not throw, but a stray exception (bad_alloc) must still reach the requests
    // of this batch and not end the thread with their futures unresolved.
    try {
      status = runner.run(batch->packed, pooled);
    } catch (const std::bad_alloc&) {
      status = Status(ErrorCode::kOutOfMemory, "out of host memory while running the batch");
    } catch (const std::exception& e) {
      status = internal_error(std::string("batch runner threw: ") + e.what());
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!status.ok()) {
      status = status.with_context("device " + device + ", batch of " +
                                   std::to_string(batch->packed.sequences()) + " texts");
    }
    scheduler_.complete(*batch, status, pooled, seconds);
  }
}

}  // namespace embd::runtime
