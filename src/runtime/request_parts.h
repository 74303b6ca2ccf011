// One request queued as several scheduler requests (its parts, each a run of consecutive
// inputs), answered as one: the Engine queues a large request's first texts while it still
// tokenises the rest, so the device starts early (see Engine::Impl::head_part).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "embd/engine.hpp"
#include "runtime/shared_rows.h"

namespace embd::runtime {

// Bytes of text in `texts`.
std::size_t text_bytes(std::span<const std::string> texts);

// How many leading texts go in a request's first part: the longest run of whole texts holding at
// most 1/`fraction` of the request's text (at least one text, never all of them), or 0 when the
// request is not worth splitting (one text, or less than `min_bytes` of text). Never more than
// the fraction: one text over it would make a device batch of its own, beside the full ones.
std::size_t head_part_size(std::span<const std::string> texts, std::size_t min_bytes, std::size_t fraction);

// Thread-safe. `done` runs exactly once: with the parts' rows joined in order once every part
// has its rows, or with the first error any part reports (later outcomes are then dropped). It
// runs on the thread that delivers the deciding outcome.
//
// With `rows`, the parts wrote their rows into that shared buffer (their own outcomes carry no
// data) and the joined result takes it whole; without, the parts' rows are copied together.
class PartsJoin {
 public:
  PartsJoin(std::size_t parts, EmbedCallback done, std::shared_ptr<SharedRows> rows = nullptr);

  // The outcome of part `index`.
  void deliver(std::size_t index, Result<Embeddings> outcome);
  // Whether `done` has run (or is running): the parts not yet queued need not be.
  bool resolved();

 private:
  Embeddings join();

  std::mutex mu_;
  std::vector<std::optional<Embeddings>> parts_;  // GUARDED_BY(mu_)
  std::size_t missing_;                           // GUARDED_BY(mu_)
  bool resolved_ = false;                         // GUARDED_BY(mu_)
  EmbedCallback done_;
  const std::shared_ptr<SharedRows> rows_;
  const std::chrono::steady_clock::time_point created_ = std::chrono::steady_clock::now();
};

}  // namespace embd::runtime
