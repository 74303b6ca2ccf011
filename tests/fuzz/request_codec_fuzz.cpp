// The embedding routes' request parsers and the JSON string writer, on arbitrary bytes.
// Input: one byte that picks what to run, then the body.
// Checks: nothing crashes; a parsed request is consistent (texts or ids, never both, never an
// empty input); an error names its kind and has a message; json_quote always writes one JSON
// string that reads back as its input (as the input itself when that is valid UTF-8).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <simdjson.h>

#include "fuzz_check.h"
#include "server/json_codec.h"

namespace {

using namespace embd::server;

void check_inputs(const EmbedInputs& in) {
  FUZZ_CHECK(in.size() > 0, "a request parsed with no inputs");
  if (in.is_tokens) {
    FUZZ_CHECK(in.texts.empty(), "token inputs that also hold %zu texts", in.texts.size());
    for (const auto& ids : in.ids) FUZZ_CHECK(!ids.empty(), "an empty token list was accepted");
  } else {
    FUZZ_CHECK(in.ids.empty(), "text inputs that also hold %zu token lists", in.ids.size());
    for (const auto& t : in.texts) {
      FUZZ_CHECK(!t.empty(), "an empty text was accepted");
      FUZZ_CHECK(simdjson::validate_utf8(t.data(), t.size()), "a text with invalid UTF-8 was accepted");
    }
  }
}

template <typename T>
void check_error(const ApiResult<T>& r) {
  if (r.ok()) return;
  FUZZ_CHECK(!r.error().message.empty(), "an error without a message");
}

void check_quote(std::string_view text) {
  const std::string quoted = json_quote(text);
  simdjson::dom::parser parser;
  simdjson::padded_string padded(quoted);
  auto doc = parser.parse(padded);
  FUZZ_CHECK(!doc.error(), "json_quote wrote invalid JSON: %s", simdjson::error_message(doc.error()));
  std::string_view back;
  FUZZ_CHECK(!doc.value().get(back), "json_quote did not write a string");
  if (simdjson::validate_utf8(text.data(), text.size())) {
    FUZZ_CHECK(back == text, "json_quote changed valid UTF-8 (%zu bytes in, %zu back)", text.size(),
               back.size());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {
      auto r = parse_tei_embed(body);
      check_error(r);
      if (r.ok()) check_inputs(r.value().inputs);
      break;
    }
    case 1: {
      auto r = parse_openai_embed(body);
      check_error(r);
      if (r.ok()) check_inputs(r.value().inputs);
      break;
    }
    case 2: {
      auto r = parse_tokenize(body);
      check_error(r);
      if (r.ok()) FUZZ_CHECK(!r.value().texts.empty(), "a tokenize request with no texts");
      break;
    }
    default:
      check_quote(body);
  }
  return 0;
}
