// Scheduler: the queue between callers and device executors. It takes tokenised requests,
// merges them into padding-free device batches by priority, and resolves each request (its
// future, or its completion callback) once all of its sequences came back.
//
// Ownership: the scheduler owns every queued request (and its promise or callback). A
// ScheduledBatch handed to an executor shares ownership of the requests it carries, so a request
// outlives its queue entry until its last batch is delivered.
//
// Thread-safety: every public method may be called from any thread. submit() is called by
// callers; next_batch() and complete() by executors (any number of them, all pulling from this
// one queue). Executors must be stopped and joined before the scheduler is destroyed.
//
// Locking: one mutex, mu_, guards the queues, the per-request dispatch cursor and the queue
// accounting (see the GUARDED_BY notes). It is a leaf lock: no other lock is taken while holding
// it, and no request is resolved (no promise fulfilled, no callback run) and no device work runs
// under it. Completion is lock-free: each request counts its outstanding sequences with an atomic,
// and an atomic flag makes sure it is resolved exactly once (by the last delivery, or by the first
// failure).
//
// Scheduling rules:
//  * Priority classes query(0) > interactive(1) > batch(2); FIFO inside a class.
//  * Ageing: a class's effective level is  class - floor(waited / ageing_step),  where `waited`
//    is the time since the class was last served (or since its front request arrived, if
//    later). The class with the lowest level is served; ties go to the one waiting longest.
//    Serving a class resets its clock, so an aged bulk request gets one batch and then yields
//    to queries again: background work gets at least one batch every 2 * ageing_step and a
//    query waits at most about one batch behind it.
//  * A batch takes sequences in that order until the next one would pass max_batch_tokens (real
//    tokens, no padding) or the batch holds max_batch_requests sequences. A batch that starts
//    with query work takes lower-priority filler only up to query_fill_tokens. A sequence longer than
//    max_batch_tokens runs alone. Large requests are thus split over several batches, so a query
//    never waits for more than the batch in flight. Inside a batch sequences are sorted by
//    length, longest first.
//  * Class masks: an executor may take a subset of the classes (next_batch's `classes`); the
//    rules here then apply among those. A GPU's query lane takes queries only and the GPU's other
//    executor everything else, so a query never waits in line behind bulk work.
//  * Fill delay: when less than a full budget is queued, an executor waits until the oldest
//    queued request has waited batch_fill_delay (or the budget fills) so concurrent arrivals
//    share a batch. A full budget is dispatched at once.
//  * Return wait: a caller answered moments ago (within return_horizon) by a batch of less than
//    return_fill_tokens is likely to send its next request at once: N workers in a loop, each
//    waiting for its answer. While such callers of the executor's classes are still out and
//    less than return_fill_tokens is queued, the executor waits for them, up to return_wait
//    after the oldest queued request arrived, so they share one batch instead of trailing the
//    first arrival one batch at a time (a small batch costs the device about as much as a full
//    one). Each arrival of a class counts as the return of its longest-out answered caller, so
//    a lone caller in a loop never waits. Callers of larger batches are not waited for: the
//    device is busy enough that they join the next batch anyway.
//  * Back-pressure: past max_queued_tokens or max_queued_requests, submit() fails at once with
//    kOverloaded. A request larger than max_queued_tokens on its own is kInvalidArgument.
//  * Cancelled or expired requests are dropped before any more of their sequences reach a
//    device (kCancelled / kDeadlineExceeded). Sequences already running still finish; their
//    results are discarded.
//  * stop() (and the destructor): submit() answers kUnavailable, every queued request resolves
//    with kUnavailable, batches already handed out are delivered normally.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stop_token>
#include <variant>
#include <vector>

#include "core/status.h"
#include "embd/engine.hpp"
#include "embd/options.hpp"
#include "runtime/batch.h"
#include "runtime/shared_rows.h"
#include "runtime/stats.h"

namespace embd::runtime {

using Clock = std::chrono::steady_clock;

struct SchedulerOptions {
  std::size_t max_batch_tokens = 16384;
  std::size_t max_batch_requests = 512;  // sequences per device batch
  std::size_t max_queued_tokens = 1u << 22;
  std::size_t max_queued_requests = 1u << 16;
  std::chrono::microseconds batch_fill_delay{200};
  // A batch that carries query-priority work adds lower-priority sequences only up to this many
  // tokens, so a query does not wait for a full batch of background work riding with it.
  std::size_t query_fill_tokens = 2048;
  // Waiting this long raises a class by one level; zero turns ageing off (strict priority).
  std::chrono::microseconds ageing_step{std::chrono::seconds(1)};
  // An idle executor takes work it handed over to another (a GPU's first executor: queries,
  // once the query lane runs them) when that work has waited this long: its own executor, which
  // takes it within microseconds when idle, is evidently busy. Long enough that an idle lane
  // keeps its queries; short against a batch's time on the device (about 0.1 ms and up).
  std::chrono::microseconds spill_after{50};
  // Return wait (see above); zero turns it off. return_horizon: how long after its answer a
  // caller still counts as about to return.
  std::chrono::microseconds return_wait{100};
  std::chrono::microseconds return_horizon{250};
  std::size_t return_fill_tokens = 1024;

  // The budgets of LoadOptions; the rest keep their defaults.
  static SchedulerOptions from(const LoadOptions& load);
};

// Where a request's rows go: a buffer of its own (no `rows`), or rows first_row... of a buffer
// shared by the parts of a larger request (SharedRows). With shared rows the request's
// Embeddings carries no data; the whole is read from the SharedRows once every part is done.
struct RowTarget {
  std::shared_ptr<SharedRows> rows;
  std::size_t first_row = 0;
};

namespace detail {
struct Request;
// Where a request's outcome goes: a future's promise or a completion callback.
using Sink = std::variant<std::promise<Result<Embeddings>>, EmbedCallback>;
}  // namespace detail

// Runs `done` with `result`. An exception from it (a broken contract: callbacks must not throw)
// is contained, so the executor or caller thread that resolves the request survives it.
void invoke_callback(const EmbedCallback& done, Result<Embeddings> result) noexcept;

// A set of priority classes, one bit per Priority (bit 0 = query): which work an executor takes.
using ClassMask = std::uint8_t;
constexpr ClassMask kAllClasses = 0b111;
constexpr ClassMask class_bit(Priority p) { return static_cast<ClassMask>(1u << static_cast<unsigned>(p)); }
// Whether `classes` holds the class with queue index `c` (= its Priority value).
constexpr bool includes(ClassMask classes, std::size_t c) { return ((classes >> c) & 1u) != 0; }

// One device batch and the bookkeeping to route its rows back to their requests.
struct ScheduledBatch {
  struct Slot {
    std::shared_ptr<detail::Request> request;
    std::size_t sequence = 0;  // index of the sequence inside its request
  };
  PackedBatch packed;
  std::vector<Slot> slots;  // slots[i] is row i of the packed batch
};

class Scheduler {
 public:
  // hidden_size: width of the pooled rows every BatchRunner returns.
  Scheduler(SchedulerOptions options, std::size_t hidden_size);
  ~Scheduler();  // stop()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues one request: `sequences` are token ids per text, already tokenised and truncated.
  // Never blocks on device work. Rejections (overload, invalid input, shutdown, a deadline
  // already passed, a token already cancelled) come back as an already-resolved future.
  // tokenization_seconds is reported back in the Embeddings (the caller tokenised).
  std::future<Result<Embeddings>> submit(std::vector<std::vector<std::int32_t>> sequences,
                                         const EmbedOptions& options,
                                         double tokenization_seconds = 0);
  // Same, with the outcome handed to `done` (exactly once) instead of a future: on this thread
  // for a rejection, else on the thread that resolves the request (an executor in complete() or
  // next_batch(), a submit() that sweeps it out as cancelled or expired, or stop()). Its
  // captures are destroyed on that thread right after it returns.
  // `target` says where the rows go (RowTarget); its shared rows must hold first_row +
  // sequences.size() rows.
  void submit(std::vector<std::vector<std::int32_t>> sequences, const EmbedOptions& options,
              EmbedCallback done, double tokenization_seconds = 0, RowTarget target = {});

  // Executor side. Blocks until a batch is ready (see the fill delay and the return wait);
  // returns nullopt once the scheduler is stopped or `stop` is requested. With wait = false it
  // never blocks: nullopt also when no batch is ready yet (or it would wait for one to fill).
  // The batch holds work of the `classes` only (a query lane takes queries alone, the executor
  // beside it everything else); the rules above apply among those classes.
  std::optional<ScheduledBatch> next_batch(std::stop_token stop, bool wait = true,
                                           ClassMask classes = kAllClasses);
  // Same, with classes that another thread may narrow (never widen) meanwhile: a narrowing applies
  // to every batch assembled after it, even while this call waits. `spill` classes (handed over
  // to another executor; another thread may move bits from `classes` to `spill`, never the
  // other way) are taken only while `classes` have no work, once their oldest request has waited
  // SchedulerOptions::spill_after; a batch holds work of one of the two sets, never both.
  std::optional<ScheduledBatch> next_batch(std::stop_token stop, bool wait,
                                           const std::atomic<ClassMask>& classes,
                                           const std::atomic<ClassMask>& spill);
  // Delivers a batch's result: `status` OK with `pooled` = [B x hidden_size] raw rows, or the
  // error that fails every request in the batch. `device_seconds` feeds the stats.
  void complete(ScheduledBatch& batch, const Status& status, std::span<const float> pooled,
                double device_seconds);

  // Stops accepting work and resolves everything queued with kUnavailable. Idempotent.
  void stop();

  std::size_t hidden_size() const { return hidden_size_; }
  // The width of a request's rows: `dimensions` where set (Matryoshka truncation), else hidden.
  std::size_t output_dim(const EmbedOptions& options) const {
    return options.dimensions == 0 ? hidden_size_ : options.dimensions;
  }
  const SchedulerOptions& options() const { return options_; }
  Stats& stats() { return stats_; }
  const Stats& stats() const { return stats_; }

 private:
  using RequestPtr = std::shared_ptr<detail::Request>;
  using Resolution = std::pair<RequestPtr, Status>;

  // Both submit()s: screens, queues or rejects the request; `sink` receives the outcome.
  void admit(std::vector<std::vector<std::int32_t>> sequences, const EmbedOptions& options,
             double tokenization_seconds, detail::Sink sink, RowTarget target = {});
  Status validate(const std::vector<std::vector<std::int32_t>>& sequences,
                  const EmbedOptions& options, std::size_t& tokens) const;
  // Answers a request that never needs the queue (invalid, cancelled, expired, empty).
  std::optional<Result<Embeddings>> screen(const std::vector<std::vector<std::int32_t>>& sequences,
                                           const EmbedOptions& options, std::size_t& tokens);
  // Queues the request, or says why not (overload, shutdown).
  Status enqueue(const RequestPtr& request, std::size_t tokens);
  std::size_t queued_tokens_locked() const;  // undispatched tokens of every class
  bool has_work_locked(ClassMask classes) const;
  bool full_locked(ClassMask classes) const;
  std::optional<std::size_t> pick_class_locked(Clock::time_point now, ClassMask classes) const;
  Clock::time_point oldest_arrival_locked(ClassMask classes) const;
  // Return wait: whether answered callers of `classes` are still expected back while a small
  // batch is queued (forgetting the ones answered before now - return_horizon), and until when
  // to wait for them.
  bool awaiting_returns_locked(Clock::time_point now, ClassMask classes);
  // Forgets the callers of class `c` answered before now - return_horizon.
  void forget_old_answers_locked(std::size_t c, Clock::time_point now);
  Clock::time_point return_deadline_locked(ClassMask classes) const;
  // Notes the requests `batch` resolves as answered callers, before they are resolved (a caller
  // may submit again the moment it has its answer).
  void note_answers(const ScheduledBatch& batch);
  // Drops dead (cancelled, expired, already failed) requests at the queue fronts, or in the whole
  // queue when `everywhere`; their resolutions are appended to `out` for after the unlock.
  void drop_dead_locked(Clock::time_point now, bool everywhere, std::vector<Resolution>& out);
  void remove_locked(detail::Request& request);
  ScheduledBatch assemble_locked(Clock::time_point now, ClassMask classes,
                                 std::vector<Resolution>& dropped);
  void publish_queue_locked();
  // Resolve a request unless it already was: with an error, or with its rows.
  void fail(detail::Request& request, const Status& why);
  void finish(detail::Request& request);

  const SchedulerOptions options_;
  const std::size_t hidden_size_;
  Stats stats_;  // internally synchronised

  mutable std::mutex mu_;
  // One per class mask: an executor waits on its mask's, and an arrival wakes only the masks
  // holding its class (a query does not wake the executor beside the query lane). Signalled on
  // arrivals and on stop; waits use mu_.
  std::array<std::condition_variable_any, kAllClasses + 1> cv_;
  bool stopping_ = false;                              // GUARDED_BY(mu_)
  std::array<std::deque<RequestPtr>, 3> queues_;       // GUARDED_BY(mu_), by Priority
  std::array<Clock::time_point, 3> last_served_{};     // GUARDED_BY(mu_), ageing clocks
  std::array<std::size_t, 3> class_tokens_{};          // GUARDED_BY(mu_), undispatched tokens by class
  std::array<std::size_t, 3> class_sequences_{};       // GUARDED_BY(mu_), undispatched sequences by class
  Clock::time_point last_sweep_{};                     // GUARDED_BY(mu_)
  // Return wait: when callers of each class were answered, oldest first, less the ones that
  // have returned (an arrival removes the oldest).
  std::array<std::deque<Clock::time_point>, 3> answered_;  // GUARDED_BY(mu_)
};

}  // namespace embd::runtime
