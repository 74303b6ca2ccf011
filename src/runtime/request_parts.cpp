#include "runtime/request_parts.h"

#include <algorithm>
#include <utility>

#include "runtime/scheduler.h"

namespace embd::runtime {

std::size_t text_bytes(std::span<const std::string> texts) {
  std::size_t bytes = 0;
  for (const auto& t : texts) bytes += t.size();
  return bytes;
}

std::size_t head_part_size(std::span<const std::string> texts, std::size_t min_bytes, std::size_t fraction) {
  if (texts.size() < 2 || fraction == 0) return 0;
  const std::size_t total = text_bytes(texts);
  if (total < min_bytes) return 0;
  std::size_t head = 1, bytes = texts[0].size();
  while (head + 1 < texts.size() && (bytes + texts[head].size()) * fraction <= total) bytes += texts[head++].size();
  return head;
}

PartsJoin::PartsJoin(std::size_t parts, EmbedCallback done, std::shared_ptr<SharedRows> rows)
    : parts_(parts), missing_(parts), done_(std::move(done)), rows_(std::move(rows)) {}

void PartsJoin::deliver(std::size_t index, Result<Embeddings> outcome) {
  std::unique_lock lock(mu_);
  if (resolved_ || index >= parts_.size() || parts_[index]) return;
  if (!outcome.ok()) {
    resolved_ = true;
    lock.unlock();
    invoke_callback(done_, outcome.status());
    return;
  }
  parts_[index] = std::move(outcome).value();
  if (--missing_ > 0) return;
  resolved_ = true;
  Embeddings joined = join();
  lock.unlock();
  invoke_callback(done_, std::move(joined));
}

bool PartsJoin::resolved() {
  std::lock_guard lock(mu_);
  return resolved_;
}

// Rows in part order. Tokenising is summed (the parts were tokenised one after the other);
// queueing is the first part's (until the request's first text reached a device); device time
// is summed, but parts that shared a batch would count its time twice, so it is capped at the
// time since the first part was tokenised.
Embeddings PartsJoin::join() {
  const double first_tokenization = parts_.front()->tokenization_seconds;
  Embeddings out = std::move(*parts_.front());
  for (std::size_t k = 1; k < parts_.size(); ++k) {
    Embeddings& part = *parts_[k];
    out.rows += part.rows;
    if (!rows_) out.data.insert(out.data.end(), part.data.begin(), part.data.end());
    out.token_counts.insert(out.token_counts.end(), part.token_counts.begin(), part.token_counts.end());
    out.tokenization_seconds += part.tokenization_seconds;
    out.inference_seconds += part.inference_seconds;
  }
  const double since_tokenised =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - created_).count() -
      first_tokenization;
  out.inference_seconds = std::min(out.inference_seconds, std::max(0.0, since_tokenised));
  if (rows_) out.data = rows_->take();
  return out;
}

}  // namespace embd::runtime
