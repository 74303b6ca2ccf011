// `embd tokenize`: JSON Lines {"text": ...} in, one {"ids": [...]} line per input out, in order.
// Ids include the special tokens, exactly as the model sees them; no truncation unless
// --max-length is given.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli_common.h"
#include "commands.h"
#include "embd/engine.hpp"

namespace embd::cli {
namespace {

constexpr std::size_t kChunkTexts = 256;

struct TokenizeFlags {
  ModelFlags model;
  std::string input;
  std::size_t max_length = 0;
};

// Tokenizes one chunk and writes its lines; an error names the input line at fault.
Status tokenize_chunk(const Engine& engine, const std::vector<TextRecord>& records,
                      const TokenizeFlags& flags, const std::string& input_name) {
  std::vector<std::string> texts;
  texts.reserve(records.size());
  for (const auto& r : records) texts.push_back(r.text);
  auto ids = engine.tokenize(texts, flags.max_length);
  if (!ids.ok()) {
    // Find the first text at fault so the message can name its line.
    for (const auto& r : records) {
      auto one = engine.tokenize({r.text}, flags.max_length);
      if (!one.ok()) {
        return one.status().with_context(input_name + " line " + std::to_string(r.line));
      }
    }
    return ids.status().with_context(input_name + " lines " + std::to_string(records.front().line) +
                                     "-" + std::to_string(records.back().line));
  }
  std::string out;
  for (const auto& row : *ids) {
    out += "{\"ids\":[";
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (i > 0) out += ',';
      out += std::to_string(row[i]);
    }
    out += "]}\n";
  }
  if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size()) {
    return Status(ErrorCode::kIoError, "writing to standard output failed");
  }
  return Status();
}

int run_tokenize(const TokenizeFlags& flags) {
  auto reader = JsonlReader::open(flags.input);
  if (!reader.ok()) return print_error("tokenize", reader.status());
  auto engine = load_engine(flags.model);
  if (!engine.ok()) return print_error("tokenize", engine.status());
  std::vector<TextRecord> chunk;
  for (;;) {
    auto record = (*reader)->next();
    if (!record.ok()) return print_error("tokenize", record.status());
    bool done = !record->has_value();
    if (!done) chunk.push_back(std::move(**record));
    if (chunk.size() == kChunkTexts || (done && !chunk.empty())) {
      Status status = tokenize_chunk(**engine, chunk, flags, (*reader)->name());
      if (!status.ok()) return print_error("tokenize", status);
      chunk.clear();
    }
    if (done) break;
  }
  return std::fflush(stdout) == 0 ? 0 : print_error("tokenize", Status(ErrorCode::kIoError, "writing to standard output failed"));
}

}  // namespace

CommandRun add_tokenize_command(CLI::App& root) {
  auto* cmd = root.add_subcommand("tokenize", "print token ids for JSON Lines {\"text\": ...} input");
  auto flags = std::make_shared<TokenizeFlags>();
  add_model_flags(*cmd, flags->model, /*compute=*/false);
  cmd->add_option("-i,--input", flags->input, "JSON Lines input file (default: standard input)");
  cmd->add_option("--max-length", flags->max_length, "truncate to N tokens, specials included");
  return [flags]() { return run_tokenize(*flags); };
}

}  // namespace embd::cli
