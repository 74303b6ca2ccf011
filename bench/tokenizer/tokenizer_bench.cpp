// Tokenizer throughput: the fixtures' longest texts repeated to --mb megabytes, cut into
// --piece-chars pieces (on code point boundaries), encoded on 1 thread and on --threads threads.
// --write-input saves the pieces as JSONL ({"text": ...} per line) so hf_tokenizers_bench.py
// can run identical data through HF `tokenizers`; --input-file reads such a file instead.
// --callers N adds a run in which N threads share one pool, each encoding batches of
// --batch-texts pieces (default 32) as concurrent requests to an engine do.
// Prints plain-text lines and a final JSON line. Both tools print an id checksum so that runs
// on the same input can also be compared for parity.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "core/thread_pool.h"
#include "tokenizer/tokenizer.h"

namespace {

struct Args {
  std::string fixtures = std::string(EMBD_SOURCE_DIR) + "/tests/fixtures";
  std::string model_dir;
  double mb = 8.0;
  std::size_t piece_chars = 2000;
  int threads = 0;
  int repeat = 3;
  int callers = 0;
  std::size_t batch_texts = 32;
  std::string write_input;
  std::string input_file;
};

void usage() {
  std::puts(
      "tokenizer_bench [--mb 8] [--piece-chars 2000] [--threads N] [--repeat 3] [--callers N] [--batch-texts 32]\n"
      "                [--model-dir DIR] [--fixtures DIR] [--write-input F.jsonl] [--input-file F.jsonl]");
}

bool parse_args(int argc, char** argv, Args& a) {
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (k == "--help" || k == "-h") return false;
    if (!(v = value())) return false;
    if (k == "--mb") a.mb = std::atof(v);
    else if (k == "--piece-chars") a.piece_chars = static_cast<std::size_t>(std::atol(v));
    else if (k == "--threads") a.threads = std::atoi(v);
    else if (k == "--repeat") a.repeat = std::max(1, std::atoi(v));
    else if (k == "--callers") a.callers = std::max(0, std::atoi(v));
    else if (k == "--batch-texts") a.batch_texts = static_cast<std::size_t>(std::max(1L, std::atol(v)));
    else if (k == "--model-dir") a.model_dir = v;
    else if (k == "--fixtures") a.fixtures = v;
    else if (k == "--write-input") a.write_input = v;
    else if (k == "--input-file") a.input_file = v;
    else return false;
  }
  if (a.model_dir.empty()) a.model_dir = a.fixtures + "/models/tiny-jina";
  if (a.threads <= 0) a.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return a.piece_chars > 0 && a.mb > 0;
}

std::vector<std::string> read_jsonl_texts(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line).at("text").get<std::string>());
  }
  return out;
}

// The longest distinct fixture texts (licences, code, multilingual prose), longest first.
std::vector<std::string> long_texts(const std::string& fixtures) {
  std::vector<std::string> all;
  for (const char* f : {"tokenizer.jsonl", "tiny-jina.fp64.jsonl"}) {
    auto t = read_jsonl_texts(fixtures + "/goldens/" + f);
    all.insert(all.end(), t.begin(), t.end());
  }
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  all.erase(std::unique(all.begin(), all.end()), all.end());
  std::vector<std::string> out;
  for (const auto& t : all) {
    if (t.size() >= 2000 || out.size() < 4) out.push_back(t);
  }
  return out;
}

std::vector<std::string> make_pieces(const std::vector<std::string>& texts, double mb,
                                     std::size_t piece_chars) {
  std::string corpus;
  const auto target = static_cast<std::size_t>(mb * 1024 * 1024);
  while (corpus.size() < target) {
    for (const auto& t : texts) {
      corpus += t;
      corpus += "\n\n";
      if (corpus.size() >= target) break;
    }
  }
  std::vector<std::string> pieces;
  std::size_t start = 0, chars = 0;
  for (std::size_t i = 0; i < corpus.size(); ++i) {
    if ((static_cast<unsigned char>(corpus[i]) & 0xC0) == 0x80) continue;  // continuation byte
    if (chars == piece_chars) {
      pieces.push_back(corpus.substr(start, i - start));
      start = i;
      chars = 0;
    }
    ++chars;
  }
  if (start < corpus.size()) pieces.push_back(corpus.substr(start));
  return pieces;
}

struct Run {
  double seconds = 0;
  std::size_t tokens = 0;
  std::uint64_t checksum = 0;
};

Run run_once(const embd::tokenizer::Tokenizer& tok, const std::vector<std::string>& pieces,
             embd::ThreadPool* pool) {
  auto t0 = std::chrono::steady_clock::now();
  auto results = tok.encode_batch(pieces, {}, pool);
  auto t1 = std::chrono::steady_clock::now();
  Run r;
  r.seconds = std::chrono::duration<double>(t1 - t0).count();
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (!results[i].ok()) {
      std::fprintf(stderr, "piece %zu: %s\n", i, results[i].status().to_string().c_str());
      std::exit(1);
    }
    for (auto id : results[i]->ids) r.checksum = r.checksum * 1000003u + static_cast<std::uint64_t>(id);
    r.tokens += results[i]->ids.size();
  }
  return r;
}

Run best_of(const embd::tokenizer::Tokenizer& tok, const std::vector<std::string>& pieces,
            embd::ThreadPool* pool, int repeat) {
  Run best;
  for (int i = 0; i < repeat; ++i) {
    Run r = run_once(tok, pieces, pool);
    if (i == 0 || r.seconds < best.seconds) best = r;
  }
  return best;
}

// `callers` threads take batches of `batch_texts` consecutive pieces in turn and encode each over
// the shared pool; returns the wall time and token count of all batches.
Run run_callers(const embd::tokenizer::Tokenizer& tok, const std::vector<std::string>& pieces,
                embd::ThreadPool& pool, int callers, std::size_t batch_texts) {
  std::atomic<std::size_t> next{0}, tokens{0};
  std::atomic<bool> failed{false};
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < callers; ++c) {
    threads.emplace_back([&] {
      for (;;) {
        const std::size_t first = next.fetch_add(batch_texts);
        if (first >= pieces.size()) return;
        const std::size_t count = std::min(batch_texts, pieces.size() - first);
        const auto results = tok.encode_batch(std::span(pieces).subspan(first, count), {}, &pool);
        for (const auto& r : results) {
          if (!r.ok()) failed = true;
          else tokens += r->ids.size();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  if (failed) {
    std::fprintf(stderr, "a batch failed to encode\n");
    std::exit(1);
  }
  return {std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), tokens.load(), 0};
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!parse_args(argc, argv, args)) {
    usage();
    return 2;
  }
  auto tok = embd::tokenizer::Tokenizer::load(args.model_dir);
  if (!tok.ok()) {
    std::fprintf(stderr, "%s\n", tok.status().to_string().c_str());
    return 1;
  }
  std::vector<std::string> pieces = args.input_file.empty()
                                        ? make_pieces(long_texts(args.fixtures), args.mb, args.piece_chars)
                                        : read_jsonl_texts(args.input_file);
  if (!args.write_input.empty()) {
    std::ofstream out(args.write_input, std::ios::binary);
    for (const auto& p : pieces) out << nlohmann::json{{"text", p}}.dump() << "\n";
  }
  std::size_t bytes = 0;
  for (const auto& p : pieces) bytes += p.size();
  const double mbytes = static_cast<double>(bytes) / 1e6;
  std::printf("tokenizer: %s\n", (*tok)->summary().c_str());
  std::printf("input: %zu pieces, %.2f MB\n", pieces.size(), mbytes);

  Run single = best_of(**tok, pieces, nullptr, args.repeat);
  std::printf("1 thread:  %.0f tokens/s, %.2f MB/s (%zu tokens in %.3f s)\n",
              static_cast<double>(single.tokens) / single.seconds, mbytes / single.seconds,
              single.tokens, single.seconds);
  embd::ThreadPool pool(args.threads);
  Run multi = best_of(**tok, pieces, &pool, args.repeat);
  std::printf("%d threads: %.0f tokens/s, %.2f MB/s (%.3f s)\n", args.threads,
              static_cast<double>(multi.tokens) / multi.seconds, mbytes / multi.seconds, multi.seconds);
  Run shared;
  if (args.callers > 0) {
    for (int i = 0; i < args.repeat; ++i) {
      const Run r = run_callers(**tok, pieces, pool, args.callers, args.batch_texts);
      if (i == 0 || r.seconds < shared.seconds) shared = r;
    }
    std::printf("%d callers of batches of %zu, one pool: %.0f tokens/s, %.0f batches/s (%.3f s)\n", args.callers,
                args.batch_texts, static_cast<double>(shared.tokens) / shared.seconds,
                static_cast<double>((pieces.size() + args.batch_texts - 1) / args.batch_texts) / shared.seconds,
                shared.seconds);
    if (shared.tokens != single.tokens) {
      std::fprintf(stderr, "the callers' batches gave %zu tokens, one thread %zu\n", shared.tokens, single.tokens);
      return 1;
    }
  }
  std::printf("id checksum: %016llx\n", static_cast<unsigned long long>(single.checksum));
  if (multi.checksum != single.checksum) {
    std::fprintf(stderr, "multi-threaded ids differ from single-threaded ids\n");
    return 1;
  }
  nlohmann::json j = {{"bench", "tokenizer"},
                      {"impl", "embd"},
                      {"pieces", pieces.size()},
                      {"bytes", bytes},
                      {"tokens", single.tokens},
                      {"checksum", single.checksum},
                      {"threads", args.threads},
                      {"single_tokens_per_s", static_cast<double>(single.tokens) / single.seconds},
                      {"single_mb_per_s", mbytes / single.seconds},
                      {"multi_tokens_per_s", static_cast<double>(multi.tokens) / multi.seconds},
                      {"multi_mb_per_s", mbytes / multi.seconds}};
  if (args.callers > 0) {
    j["callers"] = args.callers;
    j["batch_texts"] = args.batch_texts;
    j["callers_tokens_per_s"] = static_cast<double>(shared.tokens) / shared.seconds;
  }
  std::printf("%s\n", j.dump().c_str());
  return 0;
}
