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

bool ThreadPool::claim(Job& job, Chunk& chunk) {
  if (job.next >= job.parts) return false;
  const std::size_t c = job.next++;
  ++job.running;
  chunk = {&job, job.n * c / job.parts, job.n * (c + 1) / job.parts};
  if (job.next == job.parts) open_.erase(std::find(open_.begin(), open_.end(), &job));
  return true;
}

void ThreadPool::finish(Job& job) {
  // Notified under mu_: the caller cannot see running == 0, return and destroy `done` before
  // this notify is over.
  if (--job.running == 0 && job.next >= job.parts) job.done.notify_one();
}

void ThreadPool::close(Job& job) {
  if (job.next < job.parts) open_.erase(std::find(open_.begin(), open_.end(), &job));
  job.next = job.parts;
}

void ThreadPool::parallel_for(std::size_t n, const Fn& fn) {
  if (n == 0) return;
  if (workers_.empty() || n == 1) {
    fn(0, n);
    return;
  }
  Job job{.fn = &fn, .n = n, .parts = std::min(static_cast<std::size_t>(size()), n)};
  std::unique_lock<std::mutex> lock(mu_);
  open_.push_back(&job);
  lock.unlock();
  // The caller takes chunks itself, so parts - 1 helpers are enough.
  if (job.parts - 1 >= workers_.size()) {
    cv_.notify_all();
  } else {
    for (std::size_t i = 0; i + 1 < job.parts; ++i) cv_.notify_one();
  }
  lock.lock();
  Chunk chunk;
  while (claim(job, chunk)) {
    lock.unlock();
    try {
      fn(chunk.begin, chunk.end);
    } catch (...) {
      lock.lock();
      close(job);
      --job.running;
      job.done.wait(lock, [&] { return job.running == 0; });
      throw;
    }
    lock.lock();
    --job.running;
  }
  job.done.wait(lock, [&] { return job.running == 0; });
}

void ThreadPool::worker_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    Chunk chunk;
    bool claimed = false;
    cv_.wait(lock, [&] {
      claimed = !open_.empty() && claim(*open_.front(), chunk);
      return claimed || stop_;
    });
    if (!claimed) return;  // stop_
    lock.unlock();
    (*chunk.job->fn)(chunk.begin, chunk.end);
    lock.lock();
    finish(*chunk.job);
  }
}

}  // namespace embd
