#include "future_waiter.h"

#include <algorithm>

namespace embd::server {

namespace {
constexpr std::chrono::microseconds kMinWait{50};
constexpr std::chrono::microseconds kMaxWait{1000};

Result<Embeddings> take(std::future<Result<Embeddings>>& future) {
  try {
    return future.get();
  } catch (const std::exception& e) {  // broken promise: the engine dropped the request
    return Status(ErrorCode::kInternal, std::string("engine dropped the request: ") + e.what());
  }
}
}  // namespace

FutureWaiter::FutureWaiter() : thread_([this] { run(); }) {}

FutureWaiter::~FutureWaiter() { stop(); }

void FutureWaiter::add(std::future<Result<Embeddings>> future, Callback callback) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      incoming_.push_back({std::move(future), std::move(callback)});
      cv_.notify_one();
      return;
    }
  }
  callback(take(future));
}

void FutureWaiter::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

std::size_t FutureWaiter::pending() const {
  std::lock_guard lock(mu_);
  return incoming_.size() + active_count_;
}

void FutureWaiter::run() {
  std::vector<Entry> active;
  auto wait = kMinWait;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      active_count_ = active.size();
      if (active.empty()) {
        cv_.wait(lock, [this] { return stopping_ || !incoming_.empty(); });
        if (incoming_.empty()) return;  // stopping and nothing left
      }
      if (!incoming_.empty()) wait = kMinWait;
      while (!incoming_.empty()) {
        active.push_back(std::move(incoming_.front()));
        incoming_.pop_front();
      }
      active_count_ = active.size();
    }
    // Block on the oldest for a short while, then sweep everything that is ready.
    active.front().future.wait_for(wait);
    bool completed = false;
    for (std::size_t i = 0; i < active.size();) {
      if (active[i].future.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
        Entry entry = std::move(active[i]);
        active.erase(active.begin() + static_cast<std::ptrdiff_t>(i));
        entry.callback(take(entry.future));
        completed = true;
      } else {
        ++i;
      }
    }
    wait = completed ? kMinWait : std::min(wait * 2, kMaxWait);
  }
}

}  // namespace embd::server
