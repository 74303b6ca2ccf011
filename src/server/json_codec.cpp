#include "json_codec.h"

#include "float_text.h"

#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>
#include <simdjson.h>

namespace embd::server {
namespace {

using Kind = ApiError::Kind;
using simdjson::dom::element;
using simdjson::dom::element_type;

ApiError validation(std::string message, std::string param) {
  return make_error(Kind::kValidation, std::move(message), std::move(param));
}

const char* type_name(element_type type) {
  switch (type) {
    case element_type::ARRAY: return "an array";
    case element_type::OBJECT: return "an object";
    case element_type::INT64:
    case element_type::UINT64: return "an integer";
    case element_type::DOUBLE: return "a number";
    case element_type::STRING: return "a string";
    case element_type::BOOL: return "a boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "a value";
}

ApiError wrong_type(std::string_view field, const char* expected, element value) {
  std::string message = "`";
  message.append(field).append("` must be ").append(expected).append(", got ");
  message.append(type_name(value.type()));
  return validation(std::move(message), std::string(field));
}

// Parses `body` into a JSON object with a per-thread parser. The returned element lives until
// the next parse on this thread.
ApiResult<simdjson::dom::object> parse_object(std::string_view body) {
  thread_local simdjson::dom::parser parser;
  element root;
  auto error = parser.parse(body.data(), body.size()).get(root);
  if (error == simdjson::UTF8_ERROR) {
    return make_error(Kind::kMalformed, "request body is not valid UTF-8");
  }
  if (error == simdjson::NUMBER_ERROR) {
    return validation(std::string("request body has a number out of range: ") +
                          simdjson::error_message(error), "");
  }
  if (error) {
    return make_error(Kind::kMalformed, std::string("request body is not valid JSON: ") +
                                            simdjson::error_message(error));
  }
  simdjson::dom::object object;
  if (root.get_object().get(object)) {
    return validation(std::string("request body must be a JSON object, got ") +
                          type_name(root.type()), "");
  }
  return object;
}

// A token id: a non-negative integer that fits int32.
ApiResult<std::int32_t> parse_token_id(element value, const std::string& where) {
  if (value.type() == element_type::INT64) {
    std::int64_t v = -1;
    if (value.get_int64().get(v)) v = -1;
    if (v >= 0 && v <= std::numeric_limits<std::int32_t>::max()) return static_cast<std::int32_t>(v);
  } else if (value.type() != element_type::UINT64) {
    return wrong_type(where, "a token id (non-negative integer)", value);
  }
  return validation("`" + where + "` is not a valid token id (0 .. 2147483647)", where);
}

ApiResult<std::vector<std::int32_t>> parse_id_list(simdjson::dom::array array,
                                                   const std::string& where) {
  std::vector<std::int32_t> ids;
  ids.reserve(array.size());
  std::size_t i = 0;
  for (element item : array) {
    auto id = parse_token_id(item, where + "[" + std::to_string(i++) + "]");
    if (!id.ok()) return id.error();
    ids.push_back(id.value());
  }
  return ids;
}

// string | [string] | [int] | [[int]]; empty strings and lists are errors naming their index.
ApiResult<EmbedInputs> parse_inputs(element value, std::string_view field) {
  const std::string name(field);
  EmbedInputs inputs;
  std::string_view text;
  if (!value.get_string().get(text)) {
    if (text.empty()) {
      return make_error(Kind::kEmpty, "Input validation error: `" + name + "` cannot be empty",
                        name);
    }
    inputs.texts.emplace_back(text);
    return inputs;
  }
  simdjson::dom::array array;
  if (value.get_array().get(array)) {
    return wrong_type(name, "a string, an array of strings or an array of token ids", value);
  }
  if (array.size() == 0) return make_error(Kind::kEmpty, "`" + name + "` cannot be empty", name);
  element first_element;
  if (array.at(0).get(first_element)) return validation("`" + name + "[0]` is unreadable", name);
  const element_type first = first_element.type();
  if (first == element_type::INT64 || first == element_type::UINT64) {
    auto ids = parse_id_list(array, name);
    if (!ids.ok()) return ids.error();
    inputs.is_tokens = true;
    inputs.ids.push_back(std::move(ids.value()));
    return inputs;
  }
  inputs.is_tokens = first == element_type::ARRAY;
  std::size_t i = 0;
  for (element item : array) {
    const std::string where = name + "[" + std::to_string(i++) + "]";
    if (inputs.is_tokens) {
      simdjson::dom::array inner;
      if (item.get_array().get(inner)) return wrong_type(where, "an array of token ids", item);
      if (inner.size() == 0) {
        return make_error(Kind::kEmpty, "Input validation error: `" + where + "` cannot be empty",
                          name);
      }
      auto ids = parse_id_list(inner, where);
      if (!ids.ok()) return ids.error();
      inputs.ids.push_back(std::move(ids.value()));
    } else {
      if (item.get_string().get(text)) return wrong_type(where, "a string", item);
      if (text.empty()) {
        return make_error(Kind::kEmpty, "Input validation error: `" + where + "` cannot be empty",
                          name);
      }
      inputs.texts.emplace_back(text);
    }
  }
  return inputs;
}

ApiResult<bool> parse_bool(element value, std::string_view field) {
  bool b = false;
  if (value.get_bool().get(b)) return wrong_type(field, "a boolean", value);
  return b;
}

// A positive integer up to 2^31 or null (= 0, "all dimensions").
ApiResult<std::size_t> parse_dimensions(element value, std::string_view field) {
  if (value.is_null()) return std::size_t{0};
  const std::string name(field);
  if (value.type() == element_type::UINT64) {
    return validation("`" + name + "` is too large", name);
  }
  std::int64_t v = 0;
  if (value.get_int64().get(v)) return wrong_type(field, "a positive integer", value);
  if (v <= 0) return validation("`" + name + "` must be positive, got " + std::to_string(v), name);
  if (v > (std::int64_t{1} << 31)) return validation("`" + name + "` is too large", name);
  return static_cast<std::size_t>(v);
}

ApiResult<std::string> parse_string(element value, std::string_view field) {
  std::string_view text;
  if (value.get_string().get(text)) return wrong_type(field, "a string", value);
  return std::string(text);
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

ApiResult<std::optional<Priority>> parse_priority_field(element value) {
  if (value.is_null()) return std::optional<Priority>();
  auto text = parse_string(value, "priority");
  if (!text.ok()) return text.error();
  auto priority = parse_priority(text.value());
  if (!priority) {
    return validation("`priority` must be \"query\", \"interactive\" or \"batch\", got \"" +
                          text.value() + "\"", "priority");
  }
  return priority;
}

// Applies `fn(value)` when the object has `key` (first occurrence); propagates its error.
template <typename Fn>
std::optional<ApiError> with_field(simdjson::dom::object object, std::string_view key, Fn fn) {
  element value;
  if (object.at_key(key).get(value)) return std::nullopt;
  return fn(value);
}

}  // namespace

std::optional<Priority> parse_priority(std::string_view text) {
  if (iequals(text, "query")) return Priority::kQuery;
  if (iequals(text, "interactive")) return Priority::kInteractive;
  if (iequals(text, "batch")) return Priority::kBatch;
  return std::nullopt;
}

#define EMBD_FIELD(object, key, target, parser_call)                       \
  if (auto err = with_field(object, key, [&](element v) -> std::optional<ApiError> { \
        auto parsed = parser_call;                                         \
        if (!parsed.ok()) return parsed.error();                           \
        target = std::move(parsed.value());                                \
        return std::nullopt;                                               \
      })) {                                                                \
    return *err;                                                           \
  }

ApiResult<TeiEmbedRequest> parse_tei_embed(std::string_view body) {
  auto object = parse_object(body);
  if (!object.ok()) return object.error();
  auto obj = object.value();
  TeiEmbedRequest request;
  element inputs;
  if (obj.at_key("inputs").get(inputs)) return validation("missing field `inputs`", "inputs");
  auto parsed = parse_inputs(inputs, "inputs");
  if (!parsed.ok()) return parsed.error();
  request.inputs = std::move(parsed.value());
  EMBD_FIELD(obj, "normalize", request.normalize, parse_bool(v, "normalize"));
  if (auto err = with_field(obj, "truncate", [&](element v) -> std::optional<ApiError> {
        if (v.is_null()) return std::nullopt;
        auto b = parse_bool(v, "truncate");
        if (!b.ok()) return b.error();
        request.truncate = b.value();
        return std::nullopt;
      })) {
    return *err;
  }
  if (auto err = with_field(obj, "truncation_direction", [&](element v) -> std::optional<ApiError> {
        auto text = parse_string(v, "truncation_direction");
        if (!text.ok()) return text.error();
        if (iequals(text.value(), "left")) {
          request.truncation_direction = TruncationDirection::kLeft;
        } else if (iequals(text.value(), "right")) {
          request.truncation_direction = TruncationDirection::kRight;
        } else {
          return validation("`truncation_direction` must be \"left\" or \"right\", got \"" +
                                text.value() + "\"", "truncation_direction");
        }
        return std::nullopt;
      })) {
    return *err;
  }
  EMBD_FIELD(obj, "dimensions", request.dimensions, parse_dimensions(v, "dimensions"));
  if (auto err = with_field(obj, "prompt_name", [&](element v) -> std::optional<ApiError> {
        if (v.is_null()) return std::nullopt;
        return validation("`prompt_name` is not supported: the model has no prompts configured",
                          "prompt_name");
      })) {
    return *err;
  }
  EMBD_FIELD(obj, "priority", request.priority, parse_priority_field(v));
  return request;
}

ApiResult<OpenAiEmbedRequest> parse_openai_embed(std::string_view body) {
  auto object = parse_object(body);
  if (!object.ok()) return object.error();
  auto obj = object.value();
  OpenAiEmbedRequest request;
  element input;
  if (obj.at_key("input").get(input)) return validation("missing field `input`", "input");
  auto parsed = parse_inputs(input, "input");
  if (!parsed.ok()) return parsed.error();
  request.inputs = std::move(parsed.value());
  EMBD_FIELD(obj, "model", request.model, parse_string(v, "model"));
  if (auto err = with_field(obj, "encoding_format", [&](element v) -> std::optional<ApiError> {
        if (v.is_null()) return std::nullopt;
        auto text = parse_string(v, "encoding_format");
        if (!text.ok()) return text.error();
        if (text.value() == "base64") {
          request.base64 = true;
        } else if (text.value() != "float") {
          return validation("`encoding_format` must be \"float\" or \"base64\", got \"" +
                                text.value() + "\"", "encoding_format");
        }
        return std::nullopt;
      })) {
    return *err;
  }
  EMBD_FIELD(obj, "dimensions", request.dimensions, parse_dimensions(v, "dimensions"));
  if (auto err = with_field(obj, "user", [&](element v) -> std::optional<ApiError> {
        if (v.is_null()) return std::nullopt;
        auto text = parse_string(v, "user");
        if (!text.ok()) return text.error();
        request.user = std::move(text.value());
        return std::nullopt;
      })) {
    return *err;
  }
  EMBD_FIELD(obj, "priority", request.priority, parse_priority_field(v));
  return request;
}

ApiResult<TokenizeRequest> parse_tokenize(std::string_view body) {
  auto object = parse_object(body);
  if (!object.ok()) return object.error();
  auto obj = object.value();
  TokenizeRequest request;
  element inputs;
  if (obj.at_key("inputs").get(inputs)) return validation("missing field `inputs`", "inputs");
  auto parsed = parse_inputs(inputs, "inputs");
  if (!parsed.ok()) return parsed.error();
  if (parsed.value().is_tokens) {
    return validation("`inputs` must be a string or an array of strings", "inputs");
  }
  request.texts = std::move(parsed.value().texts);
  EMBD_FIELD(obj, "add_special_tokens", request.add_special_tokens,
             parse_bool(v, "add_special_tokens"));
  return request;
}

#undef EMBD_FIELD

void append_float(std::string& out, float value) {
  if (!std::isfinite(value)) {
    out += "null";
    return;
  }
  char buffer[kFloatTextRoom];
  out.append(buffer, write_shortest_float(value, buffer));
}

namespace {

void append_row(std::string& out, std::span<const float> row) {
  const std::size_t start = out.size();
  out.resize(start + 2 + float_list_room(row.size()));
  char* text = out.data() + start;
  *text++ = '[';
  text = write_float_list(row, text);
  *text++ = ']';
  out.resize(static_cast<std::size_t>(text - out.data()));
}

}  // namespace

std::string encode_head(const EmbeddingsFormat& format) {
  return format.kind == EmbeddingsFormat::Kind::kTei ? "[" : "{\"object\":\"list\",\"data\":[";
}

void append_rows(std::string& out, const EmbeddingsFormat& format, const Embeddings& embeddings,
                 std::size_t begin, std::size_t end) {
  const bool tei = format.kind == EmbeddingsFormat::Kind::kTei;
  const std::size_t per_row = format.base64 ? embeddings.dim * 4 * 4 / 3 + 64
                                           : float_list_room(embeddings.dim) + 64;
  out.reserve(out.size() + (end - begin) * per_row);
  for (std::size_t i = begin; i < end; ++i) {
    if (i) out += ',';
    if (tei) {
      append_row(out, embeddings.row(i));
      continue;
    }
    out += "{\"object\":\"embedding\",\"index\":";
    out += std::to_string(i);
    out += ",\"embedding\":";
    if (format.base64) {
      out += '"';
      out += base64_floats(embeddings.row(i));
      out += '"';
    } else {
      append_row(out, embeddings.row(i));
    }
    out += '}';
  }
}

std::string encode_tail(const EmbeddingsFormat& format, const Embeddings& embeddings) {
  if (format.kind == EmbeddingsFormat::Kind::kTei) return "]";
  std::uint64_t tokens = 0;
  for (auto count : embeddings.token_counts) tokens += count;
  std::string out = "],\"model\":";
  out += json_quote(format.model);
  out += ",\"usage\":{\"prompt_tokens\":";
  out += std::to_string(tokens);
  out += ",\"total_tokens\":";
  out += std::to_string(tokens);
  out += "}}";
  return out;
}

std::string encode_embeddings(const EmbeddingsFormat& format, const Embeddings& embeddings) {
  std::string out = encode_head(format);
  append_rows(out, format, embeddings, 0, embeddings.rows);
  out += encode_tail(format, embeddings);
  return out;
}

std::string encode_tei_embeddings(const Embeddings& embeddings) {
  return encode_embeddings(EmbeddingsFormat{}, embeddings);
}

std::string encode_openai_embeddings(const Embeddings& embeddings, std::string_view model,
                                     bool base64) {
  return encode_embeddings({EmbeddingsFormat::Kind::kOpenAi, std::string(model), base64}, embeddings);
}

std::string base64_encode(std::span<const std::uint8_t> bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (const std::size_t rest = bytes.size() - i; rest > 0) {
    std::uint32_t v = bytes[i] << 16;
    if (rest == 2) v |= bytes[i + 1] << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string base64_floats(std::span<const float> values) {
  std::vector<std::uint8_t> bytes(values.size() * 4);
  for (std::size_t i = 0; i < values.size(); ++i) {
    const std::uint32_t bits = std::bit_cast<std::uint32_t>(values[i]);
    for (int b = 0; b < 4; ++b) bytes[i * 4 + b] = static_cast<std::uint8_t>(bits >> (8 * b));
  }
  return base64_encode(bytes);
}

std::string json_quote(std::string_view text) {
  return nlohmann::json(std::string(text))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace embd::server
