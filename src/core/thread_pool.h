// A fixed pool of worker threads for data-parallel CPU work (tokenising a batch, kernels that
// are not oneDNN's). parallel_for blocks until every chunk ran; it may be called from several
// threads at once (calls are served one after another). Not for long-lived tasks.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace embd {

class ThreadPool {
 public:
  // threads <= 0: one per hardware thread.
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }
  // Runs fn(begin, end) over [0, n) split into parts = min(size(), n) contiguous chunks,
  // chunk c = [n*c/parts, n*(c+1)/parts). Chunks are claimed by whichever thread is free, the
  // caller included, so fn may run on any pool thread or the caller, several chunks may run on
  // one thread, and a chunk's index says nothing about the thread. Each chunk runs exactly
  // once. Returns once every chunk ran; no thread touches fn after that (a worker that wakes
  // late finds nothing to claim and goes back to sleep). fn must not call parallel_for on this
  // pool. If fn throws on the caller, chunks not yet claimed are dropped, the call waits for
  // those running elsewhere and rethrows; fn must not throw on a worker.
  void parallel_for(std::size_t n, const std::function<void(std::size_t, std::size_t)>& fn);

 private:
  using Fn = std::function<void(std::size_t, std::size_t)>;
  // Claims the next chunk of the current job under mu_; false when none is left.
  bool claim(std::size_t& begin, std::size_t& end, const Fn*& fn);
  // Marks a claimed chunk finished, under mu_.
  void finish_chunk();
  void worker_loop();

  std::mutex call_mu_;  // serialises parallel_for calls
  std::mutex mu_;       // guards the job fields below
  std::condition_variable cv_;       // workers: a job has unclaimed chunks, or stop_
  std::condition_variable done_cv_;  // caller: the last running chunk finished
  const Fn* job_ = nullptr;  // null when no call is in progress
  std::size_t job_n_ = 0;
  std::size_t parts_ = 0;
  std::size_t next_ = 0;     // next unclaimed chunk; job done claiming when next_ == parts_
  std::size_t running_ = 0;  // chunks claimed and not yet finished
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace embd
