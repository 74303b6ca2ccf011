#include "runtime/scheduler.h"

#include <algorithm>
#include <string>
#include <utility>

#include "runtime/postprocess.h"

namespace embd::runtime {
namespace detail {

struct Request {
  // Immutable after submit() returns.
  std::vector<std::vector<std::int32_t>> sequences;
  std::size_t priority = 0;
  bool normalize = true;
  std::size_t dim = 0;  // output width after `dimensions` truncation
  std::optional<Clock::time_point> deadline;
  std::optional<CancellationToken> cancel;
  Clock::time_point arrival;
  double tokenization_seconds = 0;

  // Written under mu_ when sequence 0 is dispatched; read by finish() (ordered like `out`).
  double queue_seconds = 0;
  // Device seconds of every batch that carried one of its sequences.
  std::atomic<std::uint64_t> inference_ns{0};

  // GUARDED_BY(Scheduler::mu_)
  std::size_t next_sequence = 0;  // first sequence not yet handed to an executor
  std::size_t queued_tokens = 0;  // tokens of the sequences not yet handed out

  // Allocated under mu_ when sequence 0 is dispatched, unless `target` holds shared rows. Row i
  // is written only by the executor that ran sequence i, before its release decrement of
  // `remaining`; read by finish() after the acquire decrement that reaches zero.
  std::vector<float> out;
  RowTarget target;  // immutable after submit()
  std::atomic<std::size_t> remaining{0};  // sequences not yet delivered
  std::atomic<bool> resolved{false};      // the outcome was (or is being) delivered
  Sink sink;  // used once, by whoever wins `resolved`
};

}  // namespace detail

void invoke_callback(const EmbedCallback& done, Result<Embeddings> result) noexcept {
  try {
    done(std::move(result));
  } catch (...) {  // NOLINT(bugprone-empty-catch): see the header
  }
}

namespace {

using detail::Request;

// How often next_batch() scans the whole queue (not just the fronts) for cancelled and expired
// requests, so they resolve promptly and stop holding back-pressure budget.
constexpr auto kSweepInterval = std::chrono::milliseconds(1);

// Hands a request's outcome to its promise or callback. A callback is moved out first, so its
// captures die here, on the resolving thread, and not whenever the last batch lets go of the
// request.
void deliver(detail::Sink& sink, Result<Embeddings> result) {
  if (auto* promise = std::get_if<std::promise<Result<Embeddings>>>(&sink)) {
    return promise->set_value(std::move(result));
  }
  const EmbedCallback done = std::move(std::get<EmbedCallback>(sink));
  invoke_callback(done, std::move(result));
}

// Why a queued request must not run any more, if it must not.
std::optional<Status> death(const Request& r, Clock::time_point now) {
  // Already failed (a batch error): remove it; resolve() ignores this status.
  if (r.resolved.load(std::memory_order_acquire)) return Status(ErrorCode::kInternal, "resolved");
  if (r.cancel && r.cancel->cancelled()) {
    return Status(ErrorCode::kCancelled, "request cancelled before it ran");
  }
  if (r.deadline && *r.deadline <= now) {
    return Status(ErrorCode::kDeadlineExceeded,
                  "deadline passed before the request ran (" +
                      std::to_string(r.sequences.size() - r.next_sequence) + " of " +
                      std::to_string(r.sequences.size()) + " texts not started)");
  }
  return std::nullopt;
}

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

SchedulerOptions SchedulerOptions::from(const LoadOptions& load) {
  SchedulerOptions o;
  o.max_batch_tokens = load.max_batch_tokens;
  o.max_batch_requests = load.max_batch_requests;
  o.max_queued_tokens = load.max_queued_tokens;
  o.max_queued_requests = load.max_queued_requests;
  o.batch_fill_delay = load.batch_fill_delay;
  o.return_wait = load.return_wait;
  o.ageing_step = load.ageing_step;
  return o;
}

Scheduler::Scheduler(SchedulerOptions options, std::size_t hidden_size)
    : options_(options), hidden_size_(hidden_size) {
  EMBD_CHECK(options_.max_batch_tokens > 0 && options_.max_batch_requests > 0);
  EMBD_CHECK(hidden_size_ > 0);
}

Scheduler::~Scheduler() { stop(); }

Status Scheduler::validate(const std::vector<std::vector<std::int32_t>>& sequences,
                           const EmbedOptions& options, std::size_t& tokens) const {
  if (static_cast<std::size_t>(options.priority) > 2) {
    return invalid_argument("priority " + std::to_string(static_cast<int>(options.priority)) +
                            " is not query, interactive or batch");
  }
  if (options.dimensions > hidden_size_) {
    return invalid_argument("dimensions " + std::to_string(options.dimensions) +
                            " exceeds the model's hidden size " + std::to_string(hidden_size_));
  }
  tokens = 0;
  for (std::size_t i = 0; i < sequences.size(); ++i) {
    if (sequences[i].empty()) {
      return invalid_argument("input " + std::to_string(i) + ": empty token sequence");
    }
    tokens += sequences[i].size();
  }
  if (tokens > options_.max_queued_tokens) {
    return invalid_argument("request of " + std::to_string(tokens) +
                            " tokens exceeds max_queued_tokens " +
                            std::to_string(options_.max_queued_tokens) + "; split it");
  }
  return ok_status();
}

std::optional<Result<Embeddings>> Scheduler::screen(
    const std::vector<std::vector<std::int32_t>>& sequences, const EmbedOptions& options,
    std::size_t& tokens) {
  if (Status s = validate(sequences, options, tokens); !s.ok()) {
    stats_.record_rejected_invalid();
    return s;
  }
  if (options.cancel && options.cancel->cancelled()) {
    stats_.record_cancelled();
    return Status(ErrorCode::kCancelled, "request cancelled before it ran");
  }
  if (options.deadline && *options.deadline <= Clock::now()) {
    stats_.record_deadline_exceeded();
    return Status(ErrorCode::kDeadlineExceeded, "deadline passed before the request was queued");
  }
  if (sequences.empty()) {
    stats_.record_submitted();
    stats_.record_completed();
    Embeddings empty;
    empty.dim = output_dim(options);
    return empty;
  }
  return std::nullopt;
}

Status Scheduler::enqueue(const RequestPtr& request, std::size_t tokens) {
  std::vector<Resolution> dropped;
  Status rejection;
  {
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    const auto over = [&] {
      const std::size_t requests = queues_[0].size() + queues_[1].size() + queues_[2].size();
      return queued_tokens_locked() + tokens > options_.max_queued_tokens ||
             requests >= options_.max_queued_requests;
    };
    // Dead requests still hold budget until swept; sweep before turning anyone away.
    if (!stopping_ && over()) drop_dead_locked(now, /*everywhere=*/true, dropped);
    if (stopping_) {
      rejection = Status(ErrorCode::kUnavailable, "engine is shutting down");
    } else if (over()) {
      rejection = Status(ErrorCode::kOverloaded,
                         "queue full (" + std::to_string(queued_tokens_locked()) + " tokens queued, limit " +
                             std::to_string(options_.max_queued_tokens) + "); retry later");
    } else {
      request->arrival = now;  // taken under mu_, so every queue is in arrival order
      class_tokens_[request->priority] += tokens;
      class_sequences_[request->priority] += request->sequences.size();
      queues_[request->priority].push_back(request);
      // This caller may be one answered a moment ago: the longest-out one is expected no more.
      if (auto& answered = answered_[request->priority]; !answered.empty()) answered.pop_front();
      publish_queue_locked();
    }
  }
  for (auto& [r, why] : dropped) fail(*r, why);
  return rejection;
}

std::future<Result<Embeddings>> Scheduler::submit(std::vector<std::vector<std::int32_t>> sequences,
                                                  const EmbedOptions& options,
                                                  double tokenization_seconds) {
  std::promise<Result<Embeddings>> promise;
  auto future = promise.get_future();
  admit(std::move(sequences), options, tokenization_seconds, detail::Sink(std::move(promise)));
  return future;
}

void Scheduler::submit(std::vector<std::vector<std::int32_t>> sequences,
                       const EmbedOptions& options, EmbedCallback done,
                       double tokenization_seconds, RowTarget target) {
  admit(std::move(sequences), options, tokenization_seconds, detail::Sink(std::move(done)),
        std::move(target));
}

void Scheduler::admit(std::vector<std::vector<std::int32_t>> sequences,
                      const EmbedOptions& options, double tokenization_seconds,
                      detail::Sink sink, RowTarget target) {
  if (target.rows && target.first_row + sequences.size() > target.rows->rows()) {
    return deliver(sink, internal_error("request of " + std::to_string(sequences.size()) +
                                        " inputs at row " + std::to_string(target.first_row) +
                                        " of shared rows for " + std::to_string(target.rows->rows())));
  }
  std::size_t tokens = 0;
  if (auto early = screen(sequences, options, tokens)) return deliver(sink, std::move(*early));

  auto request = std::make_shared<Request>();
  request->priority = static_cast<std::size_t>(options.priority);
  request->normalize = options.normalize;
  request->dim = output_dim(options);
  request->deadline = options.deadline;
  request->cancel = options.cancel;
  request->tokenization_seconds = tokenization_seconds;
  request->queued_tokens = tokens;
  request->remaining.store(sequences.size(), std::memory_order_relaxed);
  request->sequences = std::move(sequences);
  request->sink = std::move(sink);
  request->target = std::move(target);

  if (Status rejection = enqueue(request, tokens); !rejection.ok()) {
    if (rejection.code() == ErrorCode::kOverloaded) {
      stats_.record_rejected_overloaded();
    } else {
      stats_.record_failed();
    }
    // Never queued, so nobody else can resolve it.
    request->resolved.store(true, std::memory_order_relaxed);
    return deliver(request->sink, std::move(rejection));
  }
  stats_.record_submitted();
  // Idle executors, and ones waiting for a fuller batch, whose classes include this request's.
  for (std::size_t m = 0; m < cv_.size(); ++m) {
    if (includes(static_cast<ClassMask>(m), request->priority)) cv_[m].notify_all();
  }
}

std::size_t Scheduler::queued_tokens_locked() const {
  std::size_t tokens = 0;
  for (std::size_t t : class_tokens_) tokens += t;
  return tokens;
}

bool Scheduler::has_work_locked(ClassMask classes) const {
  for (std::size_t c = 0; c < queues_.size(); ++c) {
    if (includes(classes, c) && class_sequences_[c] > 0) return true;
  }
  return false;
}

bool Scheduler::full_locked(ClassMask classes) const {
  std::size_t tokens = 0, sequences = 0;
  for (std::size_t c = 0; c < queues_.size(); ++c) {
    if (!includes(classes, c)) continue;
    tokens += class_tokens_[c];
    sequences += class_sequences_[c];
  }
  return tokens >= options_.max_batch_tokens || sequences >= options_.max_batch_requests;
}

std::optional<std::size_t> Scheduler::pick_class_locked(Clock::time_point now,
                                                        ClassMask classes) const {
  std::optional<std::size_t> best;
  long long best_level = 0;
  Clock::time_point best_since;
  for (std::size_t c = 0; c < queues_.size(); ++c) {
    if (!includes(classes, c) || queues_[c].empty()) continue;
    const auto since = std::max(last_served_[c], queues_[c].front()->arrival);
    long long level = static_cast<long long>(c);
    if (options_.ageing_step.count() > 0) {
      level -= static_cast<long long>((now - since) / options_.ageing_step);
    }
    if (!best || level < best_level || (level == best_level && since < best_since)) {
      best = c;
      best_level = level;
      best_since = since;
    }
  }
  return best;
}

Clock::time_point Scheduler::oldest_arrival_locked(ClassMask classes) const {
  auto oldest = Clock::time_point::max();
  for (std::size_t c = 0; c < queues_.size(); ++c) {
    if (includes(classes, c) && !queues_[c].empty()) {
      oldest = std::min(oldest, queues_[c].front()->arrival);
    }
  }
  return oldest;
}

bool Scheduler::awaiting_returns_locked(Clock::time_point now, ClassMask classes) {
  if (options_.return_wait.count() <= 0) return false;
  bool awaiting = false;
  std::size_t tokens = 0;
  for (std::size_t c = 0; c < queues_.size(); ++c) {
    if (!includes(classes, c)) continue;
    forget_old_answers_locked(c, now);
    awaiting = awaiting || !answered_[c].empty();
    tokens += class_tokens_[c];
  }
  return awaiting && tokens < options_.return_fill_tokens;
}

void Scheduler::forget_old_answers_locked(std::size_t c, Clock::time_point now) {
  auto& answered = answered_[c];
  while (!answered.empty() && answered.front() + options_.return_horizon <= now) answered.pop_front();
}

Clock::time_point Scheduler::return_deadline_locked(ClassMask classes) const {
  auto deadline = oldest_arrival_locked(classes) + options_.return_wait;
  // The wait also ends when the last expected caller no longer counts as about to return.
  auto expires = Clock::time_point::min();
  for (std::size_t c = 0; c < answered_.size(); ++c) {
    if (includes(classes, c) && !answered_[c].empty()) expires = std::max(expires, answered_[c].back());
  }
  return std::min(deadline, expires + options_.return_horizon);
}

void Scheduler::note_answers(const ScheduledBatch& batch) {
  // A request is answered by this batch if every sequence it still owes rides in it (a request
  // spread over batches in flight at once may count in none: it is not a small one).
  std::vector<const Request*> riders;
  riders.reserve(batch.slots.size());
  for (const auto& slot : batch.slots) riders.push_back(slot.request.get());
  std::sort(riders.begin(), riders.end());  // a request's sequences side by side
  std::array<std::size_t, 3> answers{};
  for (std::size_t i = 0, end = 0; i < riders.size(); i = end) {
    while (end < riders.size() && riders[end] == riders[i]) ++end;
    if (riders[i]->remaining.load(std::memory_order_relaxed) <= end - i) ++answers[riders[i]->priority];
  }
  const auto now = Clock::now();
  std::lock_guard lock(mu_);
  for (std::size_t c = 0; c < answers.size(); ++c) {
    forget_old_answers_locked(c, now);
    answered_[c].insert(answered_[c].end(), answers[c], now);
  }
}

void Scheduler::remove_locked(Request& r) {
  class_tokens_[r.priority] -= r.queued_tokens;
  class_sequences_[r.priority] -= r.sequences.size() - r.next_sequence;
  r.queued_tokens = 0;
}

void Scheduler::drop_dead_locked(Clock::time_point now, bool everywhere,
                                 std::vector<Resolution>& out) {
  const std::size_t before = out.size();
  for (auto& q : queues_) {
    if (everywhere) {
      std::erase_if(q, [&](const RequestPtr& r) {
        auto why = death(*r, now);
        if (!why) return false;
        remove_locked(*r);
        out.emplace_back(r, std::move(*why));
        return true;
      });
      continue;
    }
    while (!q.empty()) {
      auto why = death(*q.front(), now);
      if (!why) break;
      remove_locked(*q.front());
      out.emplace_back(q.front(), std::move(*why));
      q.pop_front();
    }
  }
  if (everywhere) last_sweep_ = now;
  if (out.size() != before) publish_queue_locked();
}

ScheduledBatch Scheduler::assemble_locked(Clock::time_point now, ClassMask classes,
                                          std::vector<Resolution>& dropped) {
  ScheduledBatch batch;
  std::size_t tokens = 0;
  std::size_t budget = options_.max_batch_tokens;
  bool budget_left = true;
  while (budget_left && batch.slots.size() < options_.max_batch_requests) {
    drop_dead_locked(now, /*everywhere=*/false, dropped);
    const auto c = pick_class_locked(now, classes);
    if (!c) break;
    // A batch carrying query work takes lower-class filler only up to query_fill_tokens, so the
    // query is not held up by a full batch of background work riding with it.
    if (*c != static_cast<std::size_t>(Priority::kQuery) && !batch.slots.empty() &&
        batch.slots.front().request->priority == static_cast<std::size_t>(Priority::kQuery)) {
      budget = std::min(budget, std::max(options_.query_fill_tokens, tokens));
    }
    const RequestPtr& r = queues_[*c].front();
    const std::size_t n = r->sequences.size();
    while (r->next_sequence < n && batch.slots.size() < options_.max_batch_requests) {
      const std::size_t len = r->sequences[r->next_sequence].size();
      // The first sequence always goes in: one longer than the budget runs alone.
      if (!batch.slots.empty() && tokens + len > budget) {
        budget_left = false;
        break;
      }
      if (r->next_sequence == 0) {
        r->queue_seconds = seconds_between(r->arrival, now);
        stats_.record_queue_time(r->queue_seconds);
        if (!r->target.rows) r->out.resize(n * r->dim);
      }
      batch.slots.push_back({r, r->next_sequence});
      tokens += len;
      r->queued_tokens -= len;
      class_tokens_[*c] -= len;
      --class_sequences_[*c];
      ++r->next_sequence;
      last_served_[*c] = now;
    }
    if (r->next_sequence == n) queues_[*c].pop_front();
  }
  publish_queue_locked();
  return batch;
}

void Scheduler::publish_queue_locked() {
  stats_.set_queue({queues_[0].size(), queues_[1].size(), queues_[2].size()}, queued_tokens_locked());
}

namespace {

// Orders a batch longest first and packs it (outside the scheduler lock: sequences are
// immutable once queued).
void pack(ScheduledBatch& batch) {
  const auto length = [](const ScheduledBatch::Slot& s) {
    return s.request->sequences[s.sequence].size();
  };
  std::stable_sort(batch.slots.begin(), batch.slots.end(),
                   [&](const auto& a, const auto& b) { return length(a) > length(b); });
  std::size_t total = 0;
  for (const auto& s : batch.slots) total += length(s);
  EMBD_CHECK(total <= static_cast<std::size_t>(INT32_MAX));
  PackedBatch& p = batch.packed;
  p.ids.reserve(total);
  p.cu_seqlens.reserve(batch.slots.size() + 1);
  p.cu_seqlens.push_back(0);
  for (const auto& s : batch.slots) {
    const auto& seq = s.request->sequences[s.sequence];
    p.ids.insert(p.ids.end(), seq.begin(), seq.end());
    p.cu_seqlens.push_back(static_cast<std::int32_t>(p.ids.size()));
    p.max_seqlen = std::max(p.max_seqlen, static_cast<std::int32_t>(seq.size()));
  }
}

}  // namespace

std::optional<ScheduledBatch> Scheduler::next_batch(std::stop_token stop, bool wait,
                                                    ClassMask classes) {
  const std::atomic<ClassMask> fixed{classes}, no_spill{0};
  return next_batch(stop, wait, fixed, no_spill);
}

std::optional<ScheduledBatch> Scheduler::next_batch(std::stop_token stop, bool wait,
                                                    const std::atomic<ClassMask>& live_classes,
                                                    const std::atomic<ClassMask>& live_spill) {
  std::vector<Resolution> dropped;
  std::optional<ScheduledBatch> batch;
  std::unique_lock lock(mu_);
  // Resolves dropped requests outside the lock; true if there were any.
  const auto flush = [&] {
    if (dropped.empty()) return false;
    lock.unlock();
    for (auto& [r, why] : dropped) fail(*r, why);
    dropped.clear();
    lock.lock();
    return true;
  };
  // A narrowed mask is a subset of the one a waiter sleeps on, whose notifications therefore
  // still wake it (bits moved to `spill` stay in the union it sleeps on); the predicates read the
  // masks afresh.
  const auto classes_now = [&] { return live_classes.load(std::memory_order_relaxed); };
  const auto spill_now = [&] { return live_spill.load(std::memory_order_relaxed); };
  const auto any_work = [&] { return has_work_locked(static_cast<ClassMask>(classes_now() | spill_now())); };
  while (!stopping_ && !stop.stop_requested()) {
    const auto now = Clock::now();
    const ClassMask own = classes_now(), spill = spill_now();
    const auto sleeps_on = static_cast<ClassMask>(own | spill);
    // Sleeps until `wake`, or until `ready()` after a wake-up; false when this call may not
    // wait (wait = false: give up for now). Either way the loop looks at the queues again.
    const auto sleep_until = [&](Clock::time_point wake, const auto& ready) {
      if (flush()) return true;
      if (!wait) return false;
      cv_[sleeps_on].wait_until(lock, stop, wake, [&] { return stopping_ || ready(); });
      return true;
    };
    drop_dead_locked(now, now - last_sweep_ >= kSweepInterval, dropped);
    ClassMask classes = own;
    if (!has_work_locked(own) && has_work_locked(spill)) {
      const auto ripe = oldest_arrival_locked(spill) + options_.spill_after;
      if (now < ripe) {
        if (!sleep_until(ripe, [&] { return has_work_locked(classes_now()); })) break;
        continue;
      }
      classes = spill;
    }
    if (!has_work_locked(classes)) {
      if (flush()) continue;
      if (!wait) break;
      cv_[sleeps_on].wait(lock, stop, [&] { return stopping_ || any_work(); });
      continue;
    }
    if (!full_locked(classes) && options_.batch_fill_delay.count() > 0) {
      const auto wake = oldest_arrival_locked(classes) + options_.batch_fill_delay;
      if (now < wake) {
        if (!sleep_until(wake, [&] { return full_locked(classes); })) break;
        continue;
      }
    }
    if (!full_locked(classes) && awaiting_returns_locked(now, classes)) {
      const auto wake = return_deadline_locked(classes);
      if (now < wake) {
        const auto ready = [&] {
          return full_locked(classes) || !awaiting_returns_locked(Clock::now(), classes);
        };
        if (!sleep_until(wake, ready)) break;
        continue;
      }
    }
    batch = assemble_locked(now, classes, dropped);
    if (!batch->slots.empty()) break;
    batch.reset();  // everything at the front was dead; look again
  }
  lock.unlock();
  for (auto& [r, why] : dropped) fail(*r, why);
  if (batch) pack(*batch);
  return batch;
}

void Scheduler::complete(ScheduledBatch& batch, const Status& status,
                         std::span<const float> pooled, double device_seconds) {
  const std::size_t rows = batch.slots.size();
  Status error = status;
  if (error.ok() && pooled.size() != rows * hidden_size_) {
    error = internal_error("batch runner returned " + std::to_string(pooled.size()) +
                           " floats for " + std::to_string(rows) + " sequences of width " +
                           std::to_string(hidden_size_));
  }
  stats_.record_batch(batch.packed.tokens(), rows, device_seconds, error.ok());
  // Only small batches' callers are waited for: past return_fill_tokens the device is busy
  // enough that they find the next batch anyway, and waiting would only cost it its pipelining.
  if (options_.return_wait.count() > 0 && batch.packed.tokens() < options_.return_fill_tokens) {
    note_answers(batch);
  }
  const auto device_ns = static_cast<std::uint64_t>(device_seconds * 1e9);
  std::vector<const Request*> charged;  // each request pays a batch's device time once
  for (std::size_t i = 0; i < rows; ++i) {
    Request& r = *batch.slots[i].request;
    if (std::find(charged.begin(), charged.end(), &r) == charged.end()) {
      charged.push_back(&r);
      r.inference_ns.fetch_add(device_ns, std::memory_order_relaxed);
    }
    if (!error.ok()) {
      fail(r, error);
    } else if (!r.resolved.load(std::memory_order_relaxed)) {
      // A resolved request (cancelled, failed elsewhere) discards its rows.
      const std::size_t seq = batch.slots[i].sequence;
      const std::span<float> row = r.target.rows ? r.target.rows->row(r.target.first_row + seq, r.dim)
                                                 : std::span<float>(r.out).subspan(seq * r.dim, r.dim);
      copy_truncated_row(pooled.subspan(i * hidden_size_, hidden_size_), row);
      // Row by row as batches land (the executor has the next batch running by then), so the
      // request's last batch leaves only its own rows to normalise.
      if (r.normalize) l2_normalize_rows(row, 1, r.dim);
    }
    if (r.remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) finish(r);
  }
  batch.slots.clear();  // drop our references now, not when the executor reuses the batch
}

void Scheduler::finish(Request& r) {
  if (r.resolved.exchange(true, std::memory_order_acq_rel)) return;
  Embeddings e;
  e.rows = r.sequences.size();
  e.dim = r.dim;
  e.data = std::move(r.out);
  e.token_counts.reserve(e.rows);
  for (const auto& s : r.sequences) e.token_counts.push_back(static_cast<std::uint32_t>(s.size()));
  e.tokenization_seconds = r.tokenization_seconds;
  e.queue_seconds = r.queue_seconds;
  e.inference_seconds = static_cast<double>(r.inference_ns.load(std::memory_order_relaxed)) * 1e-9;
  stats_.record_completed();
  deliver(r.sink, std::move(e));
}

void Scheduler::fail(Request& r, const Status& why) {
  if (r.resolved.exchange(true, std::memory_order_acq_rel)) return;
  switch (why.code()) {
    case ErrorCode::kCancelled: stats_.record_cancelled(); break;
    case ErrorCode::kDeadlineExceeded: stats_.record_deadline_exceeded(); break;
    default: stats_.record_failed(); break;
  }
  deliver(r.sink, why);
}

void Scheduler::stop() {
  std::vector<RequestPtr> drained;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& q : queues_) {
      for (auto& r : q) {
        remove_locked(*r);
        drained.push_back(std::move(r));
      }
      q.clear();
    }
    publish_queue_locked();
  }
  for (auto& cv : cv_) cv.notify_all();
  const Status why(ErrorCode::kUnavailable, "engine shut down before the request ran");
  for (auto& r : drained) fail(*r, why);
}

}  // namespace embd::runtime
