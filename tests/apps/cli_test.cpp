// End-to-end tests of the embd CLI (bin/embd): tokenize against the tokenizer goldens, embed
// (JSON Lines and .npy) against the float64 goldens, info fields, and errors on bad input.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kEmbd = EMBD_BINARY_DIR "/bin/embd";
const std::string kFixtures = EMBD_FIXTURES_DIR;
const std::string kTinyJina = kFixtures + "/models/tiny-jina";
const std::string kTinyBert = kFixtures + "/models/tiny-bert";

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<json> read_jsonl(const std::string& path, std::size_t limit = SIZE_MAX) {
  std::ifstream in(path);
  std::vector<json> rows;
  std::string line;
  while (rows.size() < limit && std::getline(in, line)) {
    if (!line.empty()) rows.push_back(json::parse(line));
  }
  return rows;
}

std::vector<json> parse_jsonl(const std::string& text) {
  std::vector<json> rows;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) rows.push_back(json::parse(line));
  }
  return rows;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("embd_cli_test_" + std::to_string(::getpid()) + "_" + info->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs `embd <args>` with `input` on standard input.
  RunResult run(const std::string& args, const std::string& input = "") {
    const fs::path in = dir_ / "stdin", out = dir_ / "stdout", err = dir_ / "stderr";
    std::ofstream(in, std::ios::binary) << input;
    std::string cmd = "'" + kEmbd + "' " + args + " < '" + in.string() + "' > '" + out.string() + "' 2> '" +
                      err.string() + "'";
    int status = std::system(cmd.c_str());
    RunResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = read_file(out);
    r.err = read_file(err);
    return r;
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

std::string texts_jsonl(const std::vector<json>& records) {
  std::string input;
  for (const auto& r : records) input += json{{"text", r["text"]}}.dump() + "\n";
  return input;
}

// Compares embed's JSON Lines output with a golden field, element-wise.
void expect_matches_golden(const std::vector<json>& out, const std::vector<json>& golden, const char* field,
                           double tolerance) {
  ASSERT_EQ(out.size(), golden.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    SCOPED_TRACE("text " + golden[i]["id"].get<std::string>());
    EXPECT_EQ(out[i]["index"].get<std::size_t>(), i);
    EXPECT_EQ(out[i]["tokens"].get<std::size_t>(), golden[i]["ids"].size());
    const auto& got = out[i]["embedding"];
    const auto& want = golden[i][field];
    ASSERT_EQ(got.size(), want.size());
    double max_err = 0;
    for (std::size_t k = 0; k < want.size(); ++k) {
      max_err = std::max(max_err, std::abs(got[k].get<double>() - want[k].get<double>()));
    }
    EXPECT_LE(max_err, tolerance);
  }
}

TEST(CliBinary, Exists) { ASSERT_TRUE(fs::exists(kEmbd)) << kEmbd; }

TEST_F(CliTest, TokenizeGivesGoldenIds) {
  auto golden = read_jsonl(kFixtures + "/goldens/tokenizer.jsonl", 50);
  ASSERT_EQ(golden.size(), 50u);
  auto r = run("tokenize --model '" + kTinyJina + "'", texts_jsonl(golden));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto out = parse_jsonl(r.out);
  ASSERT_EQ(out.size(), golden.size());
  for (std::size_t i = 0; i < golden.size(); ++i) {
    EXPECT_EQ(out[i]["ids"], golden[i]["ids"]) << golden[i]["id"];
  }
}

TEST_F(CliTest, TokenizeFromFileWithMaxLength) {
  auto golden = read_jsonl(kFixtures + "/goldens/tiny-jina.fp64.jsonl");
  std::ofstream(path("in.jsonl")) << texts_jsonl(golden);
  auto r = run("tokenize --model '" + kTinyJina + "' --input '" + path("in.jsonl") + "' --max-length 8");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto out = parse_jsonl(r.out);
  ASSERT_EQ(out.size(), golden.size());
  for (std::size_t i = 0; i < golden.size(); ++i) {
    auto full = golden[i]["ids"].get<std::vector<int>>();
    auto got = out[i]["ids"].get<std::vector<int>>();
    if (full.size() <= 8) {
      EXPECT_EQ(got, full);
    } else {  // [CLS] + first 6 tokens + [SEP]
      std::vector<int> want(full.begin(), full.begin() + 7);
      want.push_back(full.back());
      EXPECT_EQ(got, want) << golden[i]["id"];
    }
  }
}

TEST_F(CliTest, EmbedRawMatchesFp64Golden) {
  auto golden = read_jsonl(kFixtures + "/goldens/tiny-jina.fp64.jsonl");
  auto r = run("embed --model '" + kTinyJina + "' --no-normalize", texts_jsonl(golden));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("tokens/s"), std::string::npos) << r.err;  // the summary line
  expect_matches_golden(parse_jsonl(r.out), golden, "embedding", 1e-4);
}

TEST_F(CliTest, EmbedNormalizedByDefault) {
  auto golden = read_jsonl(kFixtures + "/goldens/tiny-jina.fp64.jsonl", 12);
  auto r = run("embed --model '" + kTinyJina + "'", texts_jsonl(golden));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_matches_golden(parse_jsonl(r.out), golden, "embedding_normalized", 1e-4);
}

TEST_F(CliTest, EmbedBertTruncatesWhenAsked) {
  auto golden = read_jsonl(kFixtures + "/goldens/tiny-bert.fp64.jsonl");
  std::ofstream(path("in.jsonl")) << texts_jsonl(golden);
  auto r = run("embed --model '" + kTinyBert + "' --no-normalize --truncate --input '" + path("in.jsonl") +
               "' --output '" + path("out.jsonl") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_matches_golden(read_jsonl(path("out.jsonl")), golden, "embedding", 1e-4);

  // Without --truncate a text over 512 tokens is an error naming its line.
  std::size_t long_line = 0;
  for (std::size_t i = 0; i < golden.size() && long_line == 0; ++i) {
    if (golden[i]["truncated"].get<bool>()) long_line = i + 1;
  }
  ASSERT_GT(long_line, 0u);
  auto bad = run("embed --model '" + kTinyBert + "' --input '" + path("in.jsonl") + "'");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("line " + std::to_string(long_line)), std::string::npos) << bad.err;
}

// A minimal reader of NumPy 1.0 float32 C-order 2-D files.
struct Npy {
  std::size_t rows = 0, cols = 0;
  std::vector<float> data;
};

::testing::AssertionResult parse_npy(const std::string& bytes, Npy& npy) {
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) return ::testing::AssertionFailure() << "bad magic";
  if (bytes[6] != 1 || bytes[7] != 0) return ::testing::AssertionFailure() << "not version 1.0";
  std::size_t header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  if ((10 + header_len) % 64 != 0) return ::testing::AssertionFailure() << "header not 64-byte aligned";
  std::string header = bytes.substr(10, header_len);
  if (header.back() != '\n') return ::testing::AssertionFailure() << "header does not end in newline";
  if (header.find("'descr': '<f4'") == std::string::npos) return ::testing::AssertionFailure() << header;
  if (header.find("'fortran_order': False") == std::string::npos) return ::testing::AssertionFailure() << header;
  auto shape = header.find("'shape': (");
  if (shape == std::string::npos) return ::testing::AssertionFailure() << header;
  if (std::sscanf(header.c_str() + shape, "'shape': (%zu, %zu)", &npy.rows, &npy.cols) != 2) {
    return ::testing::AssertionFailure() << "bad shape in " << header;
  }
  std::size_t payload = bytes.size() - 10 - header_len;
  if (payload != npy.rows * npy.cols * 4) return ::testing::AssertionFailure() << "payload " << payload << " bytes";
  npy.data.resize(npy.rows * npy.cols);
  if (payload > 0) std::memcpy(npy.data.data(), bytes.data() + 10 + header_len, payload);  // LE host
  return ::testing::AssertionSuccess();
}

TEST_F(CliTest, EmbedNpyMatchesJsonl) {
  auto golden = read_jsonl(kFixtures + "/goldens/tiny-jina.fp64.jsonl");
  std::string input = texts_jsonl(golden);
  auto jsonl = run("embed --model '" + kTinyJina + "'", input);
  ASSERT_EQ(jsonl.exit_code, 0) << jsonl.err;
  auto rows = parse_jsonl(jsonl.out);
  auto npy_run = run("embed --model '" + kTinyJina + "' --output '" + path("out.npy") + "'", input);
  ASSERT_EQ(npy_run.exit_code, 0) << npy_run.err;
  Npy npy;
  ASSERT_TRUE(parse_npy(read_file(path("out.npy")), npy));
  ASSERT_EQ(npy.rows, golden.size());
  ASSERT_EQ(npy.cols, 64u);
  ASSERT_EQ(rows.size(), npy.rows);
  for (std::size_t i = 0; i < npy.rows; ++i) {
    for (std::size_t k = 0; k < npy.cols; ++k) {
      // Printed floats are shortest round-trip: they read back to the very same float.
      ASSERT_EQ(static_cast<float>(rows[i]["embedding"][k].get<double>()), npy.data[i * npy.cols + k])
          << "row " << i << " col " << k;
    }
  }
}

TEST_F(CliTest, EmbedEmptyInput) {
  auto r = run("embed --model '" + kTinyJina + "' --output '" + path("empty.npy") + "'", "");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Npy npy;
  ASSERT_TRUE(parse_npy(read_file(path("empty.npy")), npy));
  EXPECT_EQ(npy.rows, 0u);
  EXPECT_EQ(npy.cols, 64u);
  auto jsonl = run("embed --model '" + kTinyJina + "'", "\n");
  ASSERT_EQ(jsonl.exit_code, 0) << jsonl.err;
  EXPECT_EQ(jsonl.out, "");
}

TEST_F(CliTest, InfoTinyJina) {
  auto r = run("info --model '" + kTinyJina + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json info = json::parse(r.out);
  EXPECT_EQ(info["architecture"], "jina_bert");
  EXPECT_EQ(info["hidden_size"], 64);
  EXPECT_EQ(info["num_layers"], 2);
  EXPECT_EQ(info["num_heads"], 4);
  EXPECT_EQ(info["intermediate_size"], 128);
  EXPECT_EQ(info["vocab_size"], 30528);
  EXPECT_EQ(info["max_length"], 8192);
  EXPECT_EQ(info["pooling"], "mean");
  EXPECT_NE(info["stored_dtype"].get<std::string>().find("32"), std::string::npos) << info["stored_dtype"];
  EXPECT_FALSE(info["tokenizer"].get<std::string>().empty());
  EXPECT_GT(info["parameters"].get<std::size_t>(), 0u);
  EXPECT_TRUE(info.contains("model_dir"));
  EXPECT_TRUE(info.contains("compute_dtype"));
  EXPECT_TRUE(info.contains("devices"));
  EXPECT_EQ(info["query_lanes"], 0);  // lanes are for GPUs
}

// --query-lane takes auto, on or off; on the CPU, which has no lanes, `on` changes nothing.
TEST_F(CliTest, QueryLaneFlag) {
  auto golden = read_jsonl(kFixtures + "/goldens/tiny-jina.fp64.jsonl", 4);
  auto on = run("embed --model '" + kTinyJina + "' --query-lane on", texts_jsonl(golden));
  ASSERT_EQ(on.exit_code, 0) << on.err;
  expect_matches_golden(parse_jsonl(on.out), golden, "embedding_normalized", 1e-4);
  auto bad = run("embed --model '" + kTinyJina + "' --query-lane sometimes", texts_jsonl(golden));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("--query-lane"), std::string::npos) << bad.err;
}

// --concurrent-batches is a GPU setting: on the CPU every value embeds as before, one batch at a
// time; a value outside auto/on/off names the flag.
TEST_F(CliTest, ConcurrentBatchesFlag) {
  auto golden = read_jsonl(kFixtures + "/goldens/tiny-jina.fp64.jsonl", 4);
  for (const char* value : {"on", "off", "auto"}) {
    auto r = run("embed --model '" + kTinyJina + "' --concurrent-batches " + value, texts_jsonl(golden));
    ASSERT_EQ(r.exit_code, 0) << value << ": " << r.err;
    expect_matches_golden(parse_jsonl(r.out), golden, "embedding_normalized", 1e-4);
  }
  auto bad = run("embed --model '" + kTinyJina + "' --concurrent-batches 3", texts_jsonl(golden));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("--concurrent-batches"), std::string::npos) << bad.err;
  auto info = run("info --model '" + kTinyJina + "'");
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_EQ(json::parse(info.out)["concurrent_batches"], 1);
}

TEST_F(CliTest, InfoTinyBert) {
  auto r = run("info --model '" + kTinyBert + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json info = json::parse(r.out);
  EXPECT_EQ(info["architecture"], "bert");
  EXPECT_EQ(info["hidden_size"], 64);
  EXPECT_EQ(info["num_layers"], 2);
  EXPECT_EQ(info["num_heads"], 4);
  EXPECT_EQ(info["vocab_size"], 30522);
  EXPECT_EQ(info["max_length"], 512);
  EXPECT_EQ(info["pooling"], "mean");
}

TEST_F(CliTest, MalformedJsonLineNamesTheLine) {
  std::string input = "{\"text\": \"a\"}\n{\"text\": \"b\"}\n{\"text\": \"c\n{\"text\": \"d\"}\n";
  for (const char* cmd : {"embed", "tokenize"}) {
    auto r = run(std::string(cmd) + " --model '" + kTinyJina + "'", input);
    EXPECT_NE(r.exit_code, 0) << cmd;
    EXPECT_NE(r.err.find("line 3"), std::string::npos) << cmd << ": " << r.err;
  }
}

TEST_F(CliTest, MissingTextFieldNamesTheLine) {
  std::ofstream(path("in.jsonl")) << "{\"text\": \"a\"}\n{\"txt\": \"b\"}\n";
  auto r = run("embed --model '" + kTinyJina + "' --input '" + path("in.jsonl") + "'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("line 2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("\"text\""), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(path("in.jsonl")), std::string::npos) << r.err;
  auto not_string = run("tokenize --model '" + kTinyJina + "'", "{\"text\": 5}\n");
  EXPECT_NE(not_string.exit_code, 0);
  EXPECT_NE(not_string.err.find("line 1"), std::string::npos) << not_string.err;
}

TEST_F(CliTest, MissingModelOrInputNamesThePath) {
  const std::string missing = path("no-such-model");
  for (const char* cmd : {"info", "tokenize", "embed"}) {
    auto r = run(std::string(cmd) + " --model '" + missing + "' --offline", "{\"text\": \"a\"}\n");
    EXPECT_NE(r.exit_code, 0) << cmd;
    EXPECT_NE(r.err.find(missing), std::string::npos) << cmd << ": " << r.err;
  }
  auto r = run("embed --model '" + kTinyJina + "' --input '" + path("missing.jsonl") + "'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(path("missing.jsonl")), std::string::npos) << r.err;
}

TEST_F(CliTest, BenchRunsAWorkload) {
  auto r = run("bench --model '" + kTinyJina + "' --workload b32x128 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json out = json::parse(r.out);
  ASSERT_EQ(out["workloads"].size(), 1u);
  const auto& w = out["workloads"][0];
  EXPECT_EQ(w["name"], "b32x128");
  // Texts are built to tokenize to exactly 128 tokens: 8 requests of 32.
  EXPECT_EQ(w["texts"], 256);
  EXPECT_EQ(w["tokens"], 256 * 128);
  EXPECT_GT(w["tokens_per_s"].get<double>(), 0);
}

TEST_F(CliTest, BenchWritesABatchTrace) {
  const std::string trace = path("trace.csv");
  auto r = run("bench --model '" + kTinyJina + "' --workload b32x128 --no-warm-up --batch-trace '" + trace + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(read_file(trace));
  std::string header, line;
  ASSERT_TRUE(std::getline(lines, header));
  EXPECT_EQ(header.rfind("executor,tokens,sequences,", 0), 0u) << header;
  std::size_t batches = 0, tokens = 0;
  while (std::getline(lines, line)) {
    ++batches;
    const std::size_t a = line.find(','), b = line.find(',', a + 1);
    tokens += std::stoul(line.substr(a + 1, b - a - 1));
  }
  EXPECT_GT(batches, 0u);
  EXPECT_EQ(tokens, 9u * 32 * 128);  // the warm-up request and 8 timed ones, 32 texts of 128 tokens
  auto bad = run("bench --model '" + kTinyJina + "' --workload b32x128 --batch-trace /nonexistent-dir/t.csv");
  EXPECT_NE(bad.err.find("/nonexistent-dir/t.csv"), std::string::npos) << bad.err;
}

// scripts/tools/trace_summary.py over a trace with device timestamps: bursts split at device idle
// over 1 ms, idle time inside a burst, and the host's time after a burst's last batch.
// scripts/tools/trace_summary.py's output for a trace of these batch lines (CSV, header added),
// written to `trace`.
std::string trace_summary(const std::string& trace, const std::string& batches) {
  const std::string out = trace + ".summary.txt";
  std::ofstream(trace) << "executor,tokens,sequences,max_seqlen,taken_s,enqueued_s,finished_s,delivered_s,"
                          "device_begin_s,device_end_s,ok\n"
                       << batches;
  const std::string cmd = "/usr/bin/python3 '" + std::string(EMBD_SOURCE_DIR) + "/scripts/tools/trace_summary.py' '" +
                          trace + "' > '" + out + "' 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << read_file(out);
  return read_file(out);
}

TEST_F(CliTest, TraceSummaryReportsDeviceIdleTime) {
  const std::string text = trace_summary(
      path("trace.csv"),
      // device clock = host clock - 1 s; finished 0.01 ms after each device end
      "cuda:0,100,1,100,1.000000,1.000100,1.001010,1.001200,0.000000,0.001000,1\n"
      "cuda:0,100,1,100,1.001000,1.001100,1.002510,1.002800,0.001500,0.002500,1\n"
      "cuda:0,100,1,100,1.010000,1.010100,1.011010,1.011100,0.010000,0.011000,1\n");
  EXPECT_NE(text.find("cuda:0: 3 timed batches in 2 bursts"), std::string::npos) << text;
  // The two-batch burst: span 2.5 ms, busy 2.0, idle 0.5, largest gap 0.5, delivered 0.29 ms
  // after its last batch left the device (0.30 minus the 0.01 ms wake-up offset).
  EXPECT_NE(text.find("2.500    2.000    0.500    0.500"), std::string::npos) << text;
  EXPECT_NE(text.find("0.290"), std::string::npos) << text;
}

// Concurrent batches overlap on the device: their shared time counts once as busy and is reported
// as overlap; a gap only counts where no batch runs.
TEST_F(CliTest, TraceSummaryCountsOverlappingBatchesOnce) {
  const std::string text = trace_summary(
      path("trace.csv"),
      // device 0-1.0 ms and 0.6-1.8 ms (0.4 shared), then 2.0-2.5 ms after a gap
      "cuda:0,100,1,100,1.000000,1.000100,1.001010,1.001100,0.000000,0.001000,1\n"
      "cuda:0,100,1,100,1.000100,1.000200,1.001810,1.001900,0.000600,0.001800,1\n"
      "cuda:0,100,1,100,1.001900,1.002000,1.002510,1.002600,0.002000,0.002500,1\n");
  EXPECT_NE(text.find("cuda:0: 3 timed batches in 1 bursts"), std::string::npos) << text;
  // Span 2.5 ms, busy 2.3, idle 0.2 (one gap), lead 0.01, tail 0.09, overlap 0.4.
  EXPECT_NE(text.find("2.500    2.300    0.200    0.200    0.010    0.090    0.400"), std::string::npos) << text;
}

}  // namespace
