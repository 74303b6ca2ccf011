#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

namespace embd {
namespace {

TEST(ThreadPool, CoversEveryIndexOnce) {
  ThreadPool pool(4);
  for (std::size_t n : {1u, 2u, 3u, 5u, 100u, 1001u}) {
    std::vector<std::atomic<int>> hits(n);
    pool.parallel_for(n, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) hits[i]++;
    });
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << n << " " << i;
  }
}

TEST(ThreadPool, ConcurrentCallersAreServed) {
  ThreadPool pool(3);
  std::atomic<long> total{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 8; ++t) {
    callers.emplace_back([&] {
      for (int r = 0; r < 50; ++r) {
        pool.parallel_for(64, [&](std::size_t b, std::size_t e) { total += static_cast<long>(e - b); });
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(total.load(), 8L * 50 * 64);
}

// Calls proceed together: a call whose chunks are all held up does not hold up another caller's
// call, which its own caller (and any free worker) runs to the end meanwhile.
TEST(ThreadPool, ACallerNeverWaitsForAnotherCallersWork) {
  ThreadPool pool(3);
  std::mutex mu;
  std::condition_variable cv;
  bool second_returned = false;
  std::atomic<int> slow_chunks_started{0};
  std::thread slow([&] {
    pool.parallel_for(3, [&](std::size_t, std::size_t) {
      ++slow_chunks_started;
      std::unique_lock<std::mutex> lock(mu);
      // Bounded, so that a pool which serves calls one at a time fails here rather than hangs.
      cv.wait_for(lock, std::chrono::seconds(10), [&] { return second_returned; });
    });
  });
  while (slow_chunks_started.load() < 3) std::this_thread::yield();  // every thread is held up
  std::atomic<std::size_t> covered{0};
  const auto start = std::chrono::steady_clock::now();
  pool.parallel_for(50, [&](std::size_t b, std::size_t e) { covered += e - b; });
  const auto waited = std::chrono::steady_clock::now() - start;
  {
    std::lock_guard<std::mutex> lock(mu);
    second_returned = true;
  }
  cv.notify_all();
  slow.join();
  EXPECT_EQ(covered.load(), 50u);
  EXPECT_LT(waited, std::chrono::seconds(5));
}

// The chunks parallel_for promises: parts = min(size, n), chunk c = [n*c/parts, n*(c+1)/parts).
std::multiset<std::pair<std::size_t, std::size_t>> expected_chunks(std::size_t n, int size) {
  std::multiset<std::pair<std::size_t, std::size_t>> chunks;
  if (n == 0) return chunks;
  const std::size_t parts = size == 1 || n == 1 ? 1 : std::min<std::size_t>(static_cast<std::size_t>(size), n);
  for (std::size_t c = 0; c < parts; ++c) chunks.emplace(n * c / parts, n * (c + 1) / parts);
  return chunks;
}

TEST(ThreadPool, EveryIndexExactlyOnceAndChunkBoundariesKept) {
  for (int threads : {1, 2, 3, 4, 7}) {
    ThreadPool pool(threads);
    const std::size_t s = static_cast<std::size_t>(pool.size());
    ASSERT_EQ(pool.size(), threads);
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{2}, s - 1, s, s + 1, std::size_t{1000}}) {
      for (int rep = 0; rep < 20; ++rep) {
        std::vector<std::atomic<int>> hits(n);
        std::mutex mu;
        std::multiset<std::pair<std::size_t, std::size_t>> chunks;
        std::atomic<int> out_of_range{0};
        pool.parallel_for(n, [&](std::size_t b, std::size_t e) {
          if (b >= e || e > n) out_of_range++;
          for (std::size_t i = b; i < e && i < n; ++i) hits[i]++;
          std::lock_guard<std::mutex> lock(mu);
          chunks.emplace(b, e);
        });
        ASSERT_EQ(out_of_range.load(), 0) << "threads " << threads << " n " << n;
        for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "threads " << threads << " n " << n << " i " << i;
        ASSERT_EQ(chunks, expected_chunks(n, threads)) << "threads " << threads << " n " << n;
      }
    }
  }
}

// Set by any chunk that runs after its parallel_for returned, or with another call's fn.
std::atomic<int> g_late_chunks{0};
std::atomic<int> g_foreign_chunks{0};

TEST(ThreadPool, ManyCallersEachCallVerified) {
  ThreadPool pool(4);
  constexpr int kCallers = 8;
  constexpr int kCalls = 300;
  g_late_chunks = 0;
  g_foreign_chunks = 0;
  std::atomic<int> bad_calls{0};
  // active[t]: the id of caller t's call in progress, -1 between calls. A chunk of a call that
  // already returned, or one handed to the wrong fn, sees a different id.
  std::vector<std::atomic<long>> active(kCallers);
  for (auto& a : active) a = -1;
  std::atomic<int> worker_chunks{0};  // chunks run on a pool thread, not the caller
  std::vector<std::thread> callers;
  for (int t = 0; t < kCallers; ++t) {
    callers.emplace_back([&, t] {
      const auto me = std::this_thread::get_id();
      for (int r = 0; r < kCalls; ++r) {
        const long id = static_cast<long>(t) * kCalls + r;
        const std::size_t n = static_cast<std::size_t>((t * 37 + r * 11) % 70);  // 0..69
        std::vector<int> hits(n, 0);  // each index written by one chunk only
        std::atomic<std::size_t> covered{0};
        std::atomic<std::size_t> index_sum{0};
        active[t] = id;
        pool.parallel_for(n, [&, t, r, id, n, me](std::size_t b, std::size_t e) {
          if (std::this_thread::get_id() != me) {
            worker_chunks++;
          } else if (r % 20 == 0) {
            // Now and then the caller dawdles, so the workers surely get to claim chunks too.
            std::this_thread::sleep_for(std::chrono::microseconds(500));
          }
          if (active[t].load() != id) {
            g_late_chunks++;
            return;
          }
          if (b >= e || e > n) {
            g_foreign_chunks++;
            return;
          }
          for (std::size_t i = b; i < e; ++i) {
            hits[i]++;
            index_sum += i;
          }
          covered += e - b;
        });
        active[t] = -1;
        bool ok = covered.load() == n && index_sum.load() == n * (n ? n - 1 : 0) / 2;
        for (std::size_t i = 0; i < n; ++i) ok = ok && hits[i] == 1;
        if (!ok) bad_calls++;
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(bad_calls.load(), 0);
  EXPECT_EQ(g_late_chunks.load(), 0);
  EXPECT_EQ(g_foreign_chunks.load(), 0);
  EXPECT_GT(worker_chunks.load(), 0);  // the pool's threads took part, not only the callers
}

TEST(ThreadPool, ReturnsOnlyAfterEveryChunkCompleted) {
  ThreadPool pool(4);
  for (int rep = 0; rep < 20; ++rep) {
    const std::size_t n = 4 + static_cast<std::size_t>(rep % 3);  // 4..6 -> 4 chunks
    std::vector<int> written(n, 0);  // plain ints: TSan also flags a read racing a late write
    pool.parallel_for(n, [&](std::size_t b, std::size_t e) {
      std::this_thread::sleep_for(std::chrono::microseconds(200 * static_cast<int>(b % 4)));
      for (std::size_t i = b; i < e; ++i) written[i] = static_cast<int>(i) + 1;
    });
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(written[i], static_cast<int>(i) + 1) << rep << " " << i;
  }
}

// A probe outlives its call (kept until the test ends) so a late chunk is seen without UB;
// the fn itself is destroyed right after the call, which ASan/TSan flag if a worker touches it.
struct Probe {
  std::atomic<bool> returned{false};
};

TEST(ThreadPool, FnDestroyedRightAfterCallIsNeverTouchedAgain) {
  ThreadPool pool(4);
  std::deque<Probe> probes;
  std::atomic<int> late{0};
  for (int r = 0; r < 2000; ++r) {
    const std::size_t n = 1 + static_cast<std::size_t>(r % 9);
    Probe& probe = probes.emplace_back();
    long local_total = 0;
    std::mutex local_mu;
    auto fn = std::make_unique<std::function<void(std::size_t, std::size_t)>>(
        [&local_total, &local_mu, &probe, &late](std::size_t b, std::size_t e) {
          if (probe.returned.load()) late++;
          std::lock_guard<std::mutex> lock(local_mu);
          local_total += static_cast<long>(e - b);
        });
    pool.parallel_for(n, *fn);
    probe.returned = true;
    fn.reset();
    ASSERT_EQ(local_total, static_cast<long>(n)) << r;
  }
  // Give late workers a moment to (wrongly) run something before the probes go.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(late.load(), 0);
}

TEST(ThreadPool, CallerExceptionWaitsForRunningChunksAndPoolStaysUsable) {
  ThreadPool pool(4);
  const auto caller = std::this_thread::get_id();
  std::deque<Probe> probes;
  std::atomic<int> late{0};
  int thrown = 0;
  for (int r = 0; r < 50; ++r) {
    Probe& probe = probes.emplace_back();
    try {
      pool.parallel_for(1000, [&](std::size_t, std::size_t) {
        if (std::this_thread::get_id() == caller) throw std::runtime_error("chunk");
        std::this_thread::sleep_for(std::chrono::microseconds(100));
        if (probe.returned.load()) late++;
      });
    } catch (const std::runtime_error&) {
      ++thrown;
    }
    probe.returned = true;
  }
  EXPECT_GT(thrown, 0);  // the caller nearly always claims a chunk
  std::atomic<std::size_t> covered{0};
  pool.parallel_for(1000, [&](std::size_t b, std::size_t e) { covered += e - b; });
  EXPECT_EQ(covered.load(), 1000u);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(late.load(), 0);
}

}  // namespace
}  // namespace embd
