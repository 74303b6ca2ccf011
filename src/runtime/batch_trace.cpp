#include "runtime/batch_trace.h"

#include <cstdio>
#include <fstream>
#include <utility>

namespace embd::runtime {

BatchTrace::BatchTrace(std::string path) : path_(std::move(path)) {}

BatchTrace::~BatchTrace() {
  if (Status s = write(); !s.ok()) std::fprintf(stderr, "embd: batch trace: %s\n", s.to_string().c_str());
}

double BatchTrace::now() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - origin_).count();
}

void BatchTrace::add(BatchTraceRecord record) {
  std::lock_guard lock(mu_);
  records_.push_back(std::move(record));
}

Status BatchTrace::write() const {
  std::lock_guard lock(mu_);
  std::ofstream out(path_, std::ios::trunc);
  if (!out) return invalid_argument("cannot write the batch trace '" + path_ + "'");
  out << "executor,tokens,sequences,max_seqlen,taken_s,enqueued_s,finished_s,delivered_s,"
         "device_begin_s,device_end_s,ok\n";
  const auto device = [](const std::optional<double>& t) { return t ? std::to_string(*t) : std::string(); };
  for (const auto& r : records_) {
    char host[160];
    std::snprintf(host, sizeof(host), "%.6f,%.6f,%.6f,%.6f", r.taken, r.enqueued, r.finished, r.delivered);
    out << r.executor << ',' << r.tokens << ',' << r.sequences << ',' << r.max_seqlen << ',' << host << ','
        << device(r.device_begin) << ',' << device(r.device_end) << ',' << (r.ok ? 1 : 0) << '\n';
  }
  out.flush();
  if (!out) return invalid_argument("cannot write the batch trace '" + path_ + "'");
  return ok_status();
}

}  // namespace embd::runtime
