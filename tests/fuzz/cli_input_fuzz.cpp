// The CLI's JSON Lines reader (`embd embed --input F`, `embd tokenize --input F`) on arbitrary
// file contents.
// Checks: nothing crashes or throws; records come in file order, each from a line that is not
// blank, with the text that line's "text" field holds; an error names the file and the line at
// fault, and that line exists; the reader ends at the end of the file.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "fuzz_check.h"
#include "fuzz_files.h"

namespace {

// The file the reader opens, rewritten for every input.
const std::string& input_path() {
  static const std::string path = (embd::fuzz::process_dir() / "input.jsonl").string();
  return path;
}

// The physical lines as std::getline splits them: on '\n', no empty last line after a final '\n'.
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) {
      lines.push_back(text.substr(start));
      break;
    }
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

bool blank(std::string_view line) { return line.find_first_not_of(" \t\r\n") == std::string_view::npos; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  FUZZ_CHECK(embd::fuzz::write_file(input_path(), text), "cannot write %s", input_path().c_str());
  const auto lines = split_lines(text);
  auto reader = embd::cli::JsonlReader::open(input_path());
  FUZZ_CHECK(reader.ok(), "cannot open the input: %s", reader.status().to_string().c_str());
  std::size_t last_line = 0;
  for (;;) {
    auto record = (*reader)->next();
    if (!record.ok()) {
      const std::string& message = record.status().message();
      const std::string prefix = input_path() + " line ";
      FUZZ_CHECK(message.rfind(prefix, 0) == 0, "the error does not name the file and line: %s", message.c_str());
      const std::size_t line = std::stoul(message.substr(prefix.size()));
      FUZZ_CHECK(line > last_line && line <= lines.size(), "the error names line %zu of %zu (last record %zu)",
                 line, lines.size(), last_line);
      FUZZ_CHECK(!blank(lines[line - 1]), "an error on blank line %zu", line);
      break;
    }
    if (!record->has_value()) {
      // The end: every line after the last record is blank.
      for (std::size_t i = last_line; i < lines.size(); ++i) {
        FUZZ_CHECK(blank(lines[i]), "the reader ended before line %zu", i + 1);
      }
      break;
    }
    const auto& r = **record;
    FUZZ_CHECK(r.line > last_line && r.line <= lines.size(), "record from line %zu after %zu (%zu lines)", r.line,
               last_line, lines.size());
    for (std::size_t i = last_line; i + 1 < r.line; ++i) {
      FUZZ_CHECK(blank(lines[i]), "line %zu was skipped but is not blank", i + 1);
    }
    const auto parsed = nlohmann::json::parse(lines[r.line - 1], nullptr, /*allow_exceptions=*/false);
    FUZZ_CHECK(parsed.is_object() && parsed.contains("text") && parsed["text"].is_string() &&
                   parsed["text"].get<std::string>() == r.text,
               "record of line %zu does not hold that line's text", r.line);
    last_line = r.line;
  }
  return 0;
}
