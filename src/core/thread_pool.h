// A fixed pool of worker threads for data-parallel CPU work (tokenising a batch). parallel_for
// blocks until every chunk of its call ran. Several threads may call it at once and their calls
// proceed together: each caller runs chunks of its own call, and the pool's threads help the
// oldest call that still has chunks to hand out. So a caller never waits for another caller's
// work, only for its own. Not for long-lived tasks.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
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
  // once. Returns once every chunk ran; no thread touches fn after that. fn must not call
  // parallel_for on this pool. If fn throws on the caller, chunks not yet claimed are dropped,
  // the call waits for those running elsewhere and rethrows; fn must not throw on a worker.
  void parallel_for(std::size_t n, const std::function<void(std::size_t, std::size_t)>& fn);

 private:
  using Fn = std::function<void(std::size_t, std::size_t)>;
  // One parallel_for call in progress. It lives on its caller's stack, and the caller does not
  // return until `running` is back to 0 with every chunk claimed, so a claimed chunk always
  // finds its job (and its fn) alive. All fields are guarded by mu_.
  struct Job {
    const Fn* fn;
    std::size_t n, parts;
    std::size_t next = 0;     // next unclaimed chunk; every chunk is claimed when next == parts
    std::size_t running = 0;  // chunks claimed and not yet finished
    std::condition_variable done;  // the caller: the last chunk running elsewhere finished
  };
  struct Chunk {
    Job* job = nullptr;
    std::size_t begin = 0, end = 0;
  };
  // Claims job's next chunk; false when none is left. A job leaves open_ with its last chunk.
  bool claim(Job& job, Chunk& chunk);
  // Marks a chunk that ran on a worker finished, waking its caller when it was the last.
  void finish(Job& job);
  // Stops handing out job's chunks (its caller is unwinding an exception).
  void close(Job& job);
  void worker_loop();

  std::mutex mu_;
  std::condition_variable cv_;  // workers: open_ has a job, or stop_
  std::deque<Job*> open_;       // calls with chunks left to claim, oldest first
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace embd
