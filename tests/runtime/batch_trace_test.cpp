// BatchTrace (LoadOptions::batch_trace): one CSV line per device batch, from every executor,
// with host times in order; devices without a clock leave the device columns empty.
#include "runtime/batch_trace.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "fake_runner.h"

namespace embd::runtime {
namespace {

using testing::BatchLog;
using testing::FakeConfig;
using testing::text;

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> cells;
  std::stringstream in(line);
  std::string cell;
  while (std::getline(in, cell, ',')) cells.push_back(cell);
  if (!line.empty() && line.back() == ',') cells.emplace_back();
  return cells;
}

TEST(BatchTrace, OneLinePerBatchWithHostTimesInOrder) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("embd-batch-trace-" + std::to_string(::getpid()) + ".csv");
  auto trace = std::make_shared<BatchTrace>(path.string());
  auto log = std::make_shared<BatchLog>();
  SchedulerOptions options;
  options.max_batch_tokens = 64;
  options.batch_fill_delay = std::chrono::microseconds(0);
  Scheduler scheduler(options, 8);
  std::size_t requests = 0;
  {
    std::vector<std::unique_ptr<Executor>> executors;
    for (std::size_t depth : {1u, 2u}) {  // a plain runner and a pipelining one
      FakeConfig c;
      c.hidden = 8;
      c.pipeline = depth;
      c.device = "fake:" + std::to_string(depth);
      executors.push_back(std::make_unique<Executor>(scheduler, testing::fake_factory(c, log), c.device,
                                                     kAllClasses, trace));
    }
    for (auto& e : executors) ASSERT_TRUE(e->wait_ready().ok());
    std::vector<std::future<Result<Embeddings>>> futures;
    for (int i = 0; i < 20; ++i) futures.push_back(scheduler.submit({text(i, 30), text(i + 100, 20)}, {}));
    for (auto& f : futures) ASSERT_TRUE(f.get().ok());
    requests = futures.size();
    log->open();
  }  // executors joined: every batch is traced
  ASSERT_TRUE(trace->write().ok());
  std::ifstream in(path);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line,
            "executor,tokens,sequences,max_seqlen,taken_s,enqueued_s,finished_s,delivered_s,"
            "device_begin_s,device_end_s,ok");
  std::size_t batches = 0, sequences = 0;
  while (std::getline(in, line)) {
    const auto cells = split_csv(line);
    ASSERT_EQ(cells.size(), 11u) << line;
    EXPECT_TRUE(cells[0] == "fake:1" || cells[0] == "fake:2") << line;
    EXPECT_LE(std::stoul(cells[1]), 64u);
    sequences += std::stoul(cells[2]);
    EXPECT_LE(std::stoul(cells[3]), 30u);
    const double taken = std::stod(cells[4]), enqueued = std::stod(cells[5]),
                 finished = std::stod(cells[6]), delivered = std::stod(cells[7]);
    EXPECT_LE(0.0, taken);
    EXPECT_LE(taken, enqueued);
    EXPECT_LE(enqueued, finished);
    EXPECT_LE(finished, delivered);
    EXPECT_EQ(cells[8], "");  // fakes have no device clock
    EXPECT_EQ(cells[9], "");
    EXPECT_EQ(cells[10], "1");
    ++batches;
  }
  EXPECT_EQ(batches, log->entries().size());
  EXPECT_EQ(sequences, 2 * requests);
  std::filesystem::remove(path);
}

TEST(BatchTrace, UnwritablePathIsAnErrorNamingIt) {
  BatchTrace trace("/nonexistent-dir/trace.csv");
  const Status s = trace.write();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/nonexistent-dir/trace.csv"), std::string::npos);
}

}  // namespace
}  // namespace embd::runtime
