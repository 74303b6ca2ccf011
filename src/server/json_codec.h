// JSON request parsing and response encoding for the TEI and OpenAI embedding routes.
//
// Parsing uses simdjson (hot path; it also rejects invalid UTF-8 anywhere in the body) and
// validates every field with an error that names it (and the input index where one is at
// fault). Limits that need the engine or the server configuration (batch size, token counts)
// are checked by the caller. Encoding writes floats in their shortest round-trip form
// (std::to_chars's text, see float_text.h) or as base64 of little-endian float32 bytes. All
// functions are pure and thread-safe (the simdjson parser is per thread); none throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "api_error.h"
#include "embd/engine.hpp"
#include "embd/options.hpp"

namespace embd::server {

// `inputs` / `input`: texts or token ids (never both).
struct EmbedInputs {
  std::vector<std::string> texts;
  std::vector<std::vector<std::int32_t>> ids;
  bool is_tokens = false;
  std::size_t size() const { return is_tokens ? ids.size() : texts.size(); }
};

struct TeiEmbedRequest {
  EmbedInputs inputs;
  bool normalize = true;
  std::optional<bool> truncate;  // unset: the server's --auto-truncate
  TruncationDirection truncation_direction = TruncationDirection::kRight;
  std::size_t dimensions = 0;  // 0 = all
  std::optional<Priority> priority;
};

struct OpenAiEmbedRequest {
  EmbedInputs inputs;
  std::string model;
  bool base64 = false;
  std::size_t dimensions = 0;
  std::string user;
  std::optional<Priority> priority;
};

struct TokenizeRequest {
  std::vector<std::string> texts;
  bool add_special_tokens = true;
};

ApiResult<TeiEmbedRequest> parse_tei_embed(std::string_view body);
ApiResult<OpenAiEmbedRequest> parse_openai_embed(std::string_view body);
ApiResult<TokenizeRequest> parse_tokenize(std::string_view body);

// "query" | "interactive" | "batch" (case-insensitive).
std::optional<Priority> parse_priority(std::string_view text);

// Appends the shortest decimal that reads back as exactly `value` (JSON has no NaN/Inf: null).
void append_float(std::string& out, float value);
// How an embeddings response body is written: TEI's [[...], [...]] (one array per row), or
// OpenAI's list object (base64 rows are little-endian float32).
struct EmbeddingsFormat {
  enum class Kind { kTei, kOpenAi } kind = Kind::kTei;
  std::string model;    // OpenAI
  bool base64 = false;  // OpenAI
};
// A body is head + rows [0, n) + tail, and rows may be appended in any split:
// append_rows(0, k) then append_rows(k, n) gives rows(0, n) (a row after the first brings its
// comma), so large results can be encoded in parallel pieces.
std::string encode_head(const EmbeddingsFormat& format);
void append_rows(std::string& out, const EmbeddingsFormat& format, const Embeddings& embeddings,
                 std::size_t begin, std::size_t end);
std::string encode_tail(const EmbeddingsFormat& format, const Embeddings& embeddings);
// The whole body.
std::string encode_embeddings(const EmbeddingsFormat& format, const Embeddings& embeddings);
std::string encode_tei_embeddings(const Embeddings& embeddings);
std::string encode_openai_embeddings(const Embeddings& embeddings, std::string_view model,
                                     bool base64);
std::string base64_encode(std::span<const std::uint8_t> bytes);
// Little-endian float32 bytes of `values`, base64-encoded.
std::string base64_floats(std::span<const float> values);
// A JSON string literal (quotes included); invalid UTF-8 is replaced, never an error.
std::string json_quote(std::string_view text);

}  // namespace embd::server
