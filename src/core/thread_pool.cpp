#include "core/thread_pool.h"

#include <algorithm>

namespace embd {

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  if (threads <= 0) threads = 1;
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

// Every claim happens under mu_ while job_ is set, and the caller does not return (nor does the
// next call replace job_) until running_ is back to 0, so a claimed chunk always runs with the
// fn of the job it belongs to, and that fn is alive until the chunk finished.
bool ThreadPool::claim(std::size_t& begin, std::size_t& end, const Fn*& fn) {
  if (job_ == nullptr || next_ >= parts_) return false;
  const std::size_t c = next_++;
  ++running_;
  begin = job_n_ * c / parts_;
  end = job_n_ * (c + 1) / parts_;
  fn = job_;
  return true;
}

void ThreadPool::finish_chunk() {
  if (--running_ == 0 && next_ >= parts_) done_cv_.notify_one();
}

void ThreadPool::parallel_for(std::size_t n, const Fn& fn) {
  if (n == 0) return;
  if (workers_.empty() || n == 1) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> call_lock(call_mu_);
  const std::size_t parts = std::min(static_cast<std::size_t>(size()), n);
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &fn;
    job_n_ = n;
    parts_ = parts;
    next_ = 0;
    running_ = 0;
  }
  // The caller takes a chunk itself, so parts - 1 helpers are enough.
  if (parts - 1 >= workers_.size()) {
    cv_.notify_all();
  } else {
    for (std::size_t i = 0; i + 1 < parts; ++i) cv_.notify_one();
  }
  std::unique_lock<std::mutex> lock(mu_);
  std::size_t begin = 0, end = 0;
  const Fn* job = nullptr;
  while (claim(begin, end, job)) {
    lock.unlock();
    try {
      fn(begin, end);
    } catch (...) {
      lock.lock();
      next_ = parts_;  // drop unclaimed chunks
      --running_;
      done_cv_.wait(lock, [this] { return running_ == 0; });
      job_ = nullptr;
      throw;
    }
    lock.lock();
    --running_;
  }
  done_cv_.wait(lock, [this] { return running_ == 0; });
  job_ = nullptr;
}

void ThreadPool::worker_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    std::size_t begin = 0, end = 0;
    const Fn* job = nullptr;
    bool claimed = false;
    cv_.wait(lock, [&] {
      claimed = claim(begin, end, job);
      return claimed || stop_;
    });
    if (!claimed) return;  // stop_
    lock.unlock();
    (*job)(begin, end);
    lock.lock();
    finish_chunk();
  }
}

}  // namespace embd
