// Turns the engine's std::futures into callbacks without blocking an I/O thread.
//
// std::future has no completion callback and no multi-wait, so one dedicated thread watches
// every pending future: it blocks on the oldest with a short timeout (so a lone request is seen
// the moment it completes), then sweeps all of them with a zero wait. The timeout starts at
// 50 us and doubles up to 1 ms while nothing completes, so a request finishing behind the
// oldest one is noticed within 1 ms in the worst case and the idle thread sleeps on a condition
// variable. Callbacks run on the waiter thread and must be quick (the service hands encoding to
// its worker pool).
//
// Thread-safety: add() from any thread. stop() waits for every pending future to resolve and
// runs its callback; add() after stop() runs the callback inline once the future resolves.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "embd/engine.hpp"

namespace embd::server {

class FutureWaiter {
 public:
  using Callback = std::function<void(Result<Embeddings>)>;

  FutureWaiter();
  ~FutureWaiter();  // stop()
  FutureWaiter(const FutureWaiter&) = delete;
  FutureWaiter& operator=(const FutureWaiter&) = delete;

  void add(std::future<Result<Embeddings>> future, Callback callback);
  void stop();
  std::size_t pending() const;

 private:
  struct Entry {
    std::future<Result<Embeddings>> future;
    Callback callback;
  };
  void run();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Entry> incoming_;  // guarded by mu_
  std::size_t active_count_ = 0;  // guarded by mu_ (entries owned by the thread)
  bool stopping_ = false;        // guarded by mu_
  std::thread thread_;
};

}  // namespace embd::server
