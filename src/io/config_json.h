// Typed, error-reporting access to a JSON configuration file (config.json and the
// sentence-transformers files), for the io layer's parsers. Wraps nlohmann-json and never lets
// one of its exceptions escape. A ConfigReader owns its parsed document; not thread-safe to
// mutate, safe to read concurrently. Errors name the source file and the field.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace embd::io {

class ConfigReader {
 public:
  // Parses `text`; the top level must be `kind` (object or array). `source` names the file.
  static Result<ConfigReader> parse(std::string_view text, std::string_view source,
                                    nlohmann::json::value_t kind = nlohmann::json::value_t::object);

  const std::string& source() const { return source_; }
  const nlohmann::json& doc() const { return doc_; }
  // The value of a top-level key; null when the key is absent.
  const nlohmann::json* find(std::string_view key) const;

  // Absent or JSON null -> nullopt; a value of the wrong type -> kInvalidModel naming the field.
  Result<std::optional<std::string>> string(const char* key) const;
  Result<std::optional<std::int64_t>> integer(const char* key) const;
  Result<std::optional<double>> number(const char* key) const;
  Result<std::optional<bool>> boolean(const char* key) const;

  // kInvalidModel "<source>: field '<field>' <what>".
  Status error(std::string_view field, std::string_view what) const;
  // kUnsupported "<source>: field '<field>' has unsupported value '<value>' (<hint>)".
  Status unsupported_value(std::string_view field, std::string_view value, std::string_view hint) const;

 private:
  std::string source_;
  nlohmann::json doc_;
};

// Reads a small text file whole (config files); kNotFound when absent, kInvalidModel past `limit`.
Result<std::string> read_text_file(const std::string& path, std::uintmax_t limit = 16u << 20);

}  // namespace embd::io
