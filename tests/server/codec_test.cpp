// Request parsing, response encoding and error rendering of the server (no engine needed).
#include <cstring>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/api_error.h"
#include "server/json_codec.h"
#include "server/service.h"

namespace embd::server {
namespace {

using Kind = ApiError::Kind;

TEST(TeiEmbedParse, StringAndDefaults) {
  auto r = parse_tei_embed(R"({"inputs": "What is Deep Learning?"})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().inputs.texts, std::vector<std::string>{"What is Deep Learning?"});
  EXPECT_FALSE(r.value().inputs.is_tokens);
  EXPECT_TRUE(r.value().normalize);
  EXPECT_FALSE(r.value().truncate.has_value());
  EXPECT_EQ(r.value().truncation_direction, TruncationDirection::kRight);
  EXPECT_EQ(r.value().dimensions, 0u);
}

TEST(TeiEmbedParse, AllFields) {
  auto r = parse_tei_embed(
      R"({"inputs": ["a", "b"], "normalize": false, "truncate": true,
          "truncation_direction": "Left", "dimensions": 16, "prompt_name": null,
          "priority": "batch"})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().inputs.texts.size(), 2u);
  EXPECT_FALSE(r.value().normalize);
  EXPECT_EQ(r.value().truncate, std::optional<bool>(true));
  EXPECT_EQ(r.value().truncation_direction, TruncationDirection::kLeft);
  EXPECT_EQ(r.value().dimensions, 16u);
  EXPECT_EQ(r.value().priority, std::optional<Priority>(Priority::kBatch));
}

TEST(TeiEmbedParse, TokenIds) {
  auto one = parse_tei_embed(R"({"inputs": [101, 7592, 102]})");
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(one.value().inputs.is_tokens);
  EXPECT_EQ(one.value().inputs.ids, (std::vector<std::vector<std::int32_t>>{{101, 7592, 102}}));
  auto many = parse_tei_embed(R"({"inputs": [[1, 2], [3]]})");
  ASSERT_TRUE(many.ok());
  EXPECT_EQ(many.value().inputs.ids.size(), 2u);
}

struct BadCase {
  const char* body;
  Kind kind;
  const char* needle;  // a substring the message must contain
};

TEST(TeiEmbedParse, ErrorsNameTheField) {
  const BadCase cases[] = {
      {"", Kind::kMalformed, "not valid JSON"},
      {"{", Kind::kMalformed, "not valid JSON"},
      {"[1,2]", Kind::kValidation, "JSON object"},
      {R"({"input": "x"})", Kind::kValidation, "inputs"},
      {R"({"inputs": ""})", Kind::kEmpty, "cannot be empty"},
      {R"({"inputs": []})", Kind::kEmpty, "cannot be empty"},
      {R"({"inputs": ["a", ""]})", Kind::kEmpty, "inputs[1]"},
      {R"({"inputs": 5})", Kind::kValidation, "inputs"},
      {R"({"inputs": ["a", 5]})", Kind::kValidation, "inputs[1]"},
      {R"({"inputs": [1, "a"]})", Kind::kValidation, "inputs[1]"},
      {R"({"inputs": [1, -1]})", Kind::kValidation, "inputs[1]"},
      {R"({"inputs": [[1], []]})", Kind::kEmpty, "inputs[1]"},
      {R"({"inputs": [[1], [2, 1.5]]})", Kind::kValidation, "inputs[1][1]"},
      {R"({"inputs": [99999999999]})", Kind::kValidation, "token id"},
      {R"({"inputs": "a", "normalize": "yes"})", Kind::kValidation, "normalize"},
      {R"({"inputs": "a", "truncate": 1})", Kind::kValidation, "truncate"},
      {R"({"inputs": "a", "truncation_direction": "up"})", Kind::kValidation, "truncation_direction"},
      {R"({"inputs": "a", "dimensions": 0})", Kind::kValidation, "dimensions"},
      {R"({"inputs": "a", "dimensions": -3})", Kind::kValidation, "dimensions"},
      {R"({"inputs": "a", "dimensions": 1e300})", Kind::kValidation, "dimensions"},
      {R"({"inputs": "a", "dimensions": 18446744073709551615})", Kind::kValidation, "dimensions"},
      {R"({"inputs": "a", "dimensions": 123456789012345678901234567890})", Kind::kValidation, "number"},
      {R"({"inputs": "a", "prompt_name": "query"})", Kind::kValidation, "prompt_name"},
      {R"({"inputs": "a", "priority": "urgent"})", Kind::kValidation, "priority"},
  };
  for (const auto& c : cases) {
    auto r = parse_tei_embed(c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.error().kind, c.kind) << c.body << " -> " << r.error().message;
    EXPECT_NE(r.error().message.find(c.needle), std::string::npos)
        << c.body << " -> " << r.error().message;
  }
}

TEST(TeiEmbedParse, InvalidUtf8IsMalformed) {
  std::string body = "{\"inputs\": \"a\xff\xfe b\"}";
  auto r = parse_tei_embed(body);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, Kind::kMalformed);
  EXPECT_NE(r.error().message.find("UTF-8"), std::string::npos);
}

TEST(TeiEmbedParse, DeepNestingIsAnErrorNotACrash) {
  std::string body = "{\"inputs\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  auto r = parse_tei_embed(body);
  EXPECT_FALSE(r.ok());
}

TEST(OpenAiEmbedParse, Shapes) {
  auto r = parse_openai_embed(
      R"({"input": ["x", "y"], "model": "m", "encoding_format": "base64", "dimensions": 8,
          "user": "u-1"})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().inputs.texts.size(), 2u);
  EXPECT_EQ(r.value().model, "m");
  EXPECT_TRUE(r.value().base64);
  EXPECT_EQ(r.value().dimensions, 8u);
  EXPECT_EQ(r.value().user, "u-1");
  auto f = parse_openai_embed(R"({"input": "x", "encoding_format": "float"})");
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f.value().base64);
  auto bad = parse_openai_embed(R"({"input": "x", "encoding_format": "int8"})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().param, "encoding_format");
  auto missing = parse_openai_embed(R"({"inputs": "x"})");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().param, "input");
}

TEST(TokenizeParse, Shapes) {
  auto r = parse_tokenize(R"({"inputs": ["a b", "c"], "add_special_tokens": false})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().texts.size(), 2u);
  EXPECT_FALSE(r.value().add_special_tokens);
  EXPECT_FALSE(parse_tokenize(R"({"inputs": [1, 2]})").ok());
}

TEST(Base64, KnownVectors) {
  auto enc = [](std::string_view s) {
    return base64_encode({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
  };
  EXPECT_EQ(enc(""), "");
  EXPECT_EQ(enc("M"), "TQ==");
  EXPECT_EQ(enc("Ma"), "TWE=");
  EXPECT_EQ(enc("Man"), "TWFu");
  EXPECT_EQ(enc("hello world"), "aGVsbG8gd29ybGQ=");
  // 1.0f is 0x3F800000: little-endian bytes 00 00 80 3F.
  const float one = 1.0f;
  EXPECT_EQ(base64_floats({&one, 1}), "AACAPw==");
  const float two[] = {-2.0f, 0.5f};  // C0000000, 3F000000
  EXPECT_EQ(base64_floats(two), "AAAAwAAAAD8=");
}

TEST(Encode, FloatsRoundTrip) {
  const float values[] = {0.0f, -0.0f, 1.0f, 0.1f, -3.4028235e38f, 1.17549435e-38f, 1e-45f,
                          0.123456789f};
  for (float v : values) {
    std::string s;
    append_float(s, v);
    EXPECT_EQ(std::strtof(s.c_str(), nullptr), v) << s;
  }
  std::string s;
  append_float(s, std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(s, "null");
}

Embeddings sample() {
  Embeddings e;
  e.rows = 2;
  e.dim = 3;
  e.data = {0.5f, -0.25f, 1.0f, 0.1f, 0.2f, 0.3f};
  e.token_counts = {4, 5};
  return e;
}

TEST(Encode, TeiShape) {
  auto j = nlohmann::json::parse(encode_tei_embeddings(sample()));
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0].get<std::vector<float>>(), (std::vector<float>{0.5f, -0.25f, 1.0f}));
  EXPECT_EQ(j[1][2].get<float>(), 0.3f);
}

TEST(Encode, OpenAiShape) {
  auto j = nlohmann::json::parse(encode_openai_embeddings(sample(), "my\"model", false));
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["model"], "my\"model");
  ASSERT_EQ(j["data"].size(), 2u);
  EXPECT_EQ(j["data"][1]["object"], "embedding");
  EXPECT_EQ(j["data"][1]["index"], 1);
  EXPECT_EQ(j["data"][1]["embedding"].get<std::vector<float>>(),
            (std::vector<float>{0.1f, 0.2f, 0.3f}));
  EXPECT_EQ(j["usage"]["prompt_tokens"], 9);
  EXPECT_EQ(j["usage"]["total_tokens"], 9);
  auto b = nlohmann::json::parse(encode_openai_embeddings(sample(), "m", true));
  EXPECT_EQ(b["data"][0]["embedding"], base64_floats(sample().row(0)));
}

// Rows appended in any split between head and tail make the body encode_embeddings writes (the
// server encodes large results in pieces on several workers).
TEST(Encode, RowsInAnySplitMakeTheWholeBody) {
  Embeddings e;
  e.rows = 7;
  e.dim = 5;
  for (std::size_t i = 0; i < e.rows * e.dim; ++i) e.data.push_back(0.01f * static_cast<float>(i) - 0.1f);
  e.token_counts = {1, 2, 3, 4, 5, 6, 7};
  const EmbeddingsFormat formats[] = {{}, {EmbeddingsFormat::Kind::kOpenAi, "m", false},
                                      {EmbeddingsFormat::Kind::kOpenAi, "m", true}};
  for (const auto& f : formats) {
    const std::string whole = encode_embeddings(f, e);
    for (std::size_t a = 0; a <= e.rows; ++a) {
      for (std::size_t b = a; b <= e.rows; ++b) {
        std::string body = encode_head(f), p1, p2, p3;
        append_rows(p1, f, e, 0, a);
        append_rows(p2, f, e, a, b);
        append_rows(p3, f, e, b, e.rows);
        body += p1 + p2 + p3 + encode_tail(f, e);
        ASSERT_EQ(body, whole) << "split " << a << ", " << b;
      }
    }
    EXPECT_TRUE(nlohmann::json::accept(whole));
  }
  EXPECT_EQ(encode_embeddings({}, e), encode_tei_embeddings(e));
}

TEST(ApiErrors, StatusByFlavor) {
  struct Row {
    Kind kind;
    int tei;
    int openai;
  };
  const Row rows[] = {
      {Kind::kMalformed, 400, 400},  {Kind::kValidation, 422, 400}, {Kind::kEmpty, 400, 400},
      {Kind::kTooLong, 422, 400},    {Kind::kTooLarge, 422, 400},   {Kind::kPayloadTooLarge, 413, 413},
      {Kind::kUnauthorized, 401, 401}, {Kind::kOverloaded, 429, 429}, {Kind::kUnavailable, 503, 503},
      {Kind::kBackend, 500, 500},
  };
  for (const auto& r : rows) {
    ApiError e = make_error(r.kind, "m");
    EXPECT_EQ(http_status(e, ApiFlavor::kTei), r.tei);
    EXPECT_EQ(http_status(e, ApiFlavor::kOpenAi), r.openai);
  }
}

TEST(ApiErrors, Bodies) {
  ApiError e = make_error(Kind::kOverloaded, "Model is overloaded");
  auto tei = nlohmann::json::parse(error_body(e, ApiFlavor::kTei));
  EXPECT_EQ(tei, (nlohmann::json{{"error", "Model is overloaded"}, {"error_type", "Overloaded"}}));
  ApiError v = make_error(Kind::kValidation, "bad \xff", "input");
  auto oa = nlohmann::json::parse(error_body(v, ApiFlavor::kOpenAi));
  EXPECT_EQ(oa["error"]["type"], "invalid_request_error");
  EXPECT_EQ(oa["error"]["param"], "input");
  EXPECT_TRUE(oa["error"]["code"].is_null());
  EXPECT_TRUE(oa["error"]["message"].is_string());
}

TEST(ApiErrors, EngineStatusesAreNeverServerErrorsForUserFaults) {
  const ErrorCode user[] = {ErrorCode::kInvalidArgument, ErrorCode::kInputTooLong,
                            ErrorCode::kUnsupported};
  for (auto code : user) {
    ApiError e = from_status(Status(code, "x"));
    EXPECT_LT(http_status(e, ApiFlavor::kTei), 500);
    EXPECT_LT(http_status(e, ApiFlavor::kOpenAi), 500);
  }
  EXPECT_EQ(http_status(from_status(Status(ErrorCode::kOverloaded, "q")), ApiFlavor::kTei), 429);
  EXPECT_EQ(http_status(from_status(Status(ErrorCode::kInputTooLong, "q")), ApiFlavor::kTei), 422);
  EXPECT_EQ(http_status(from_status(Status(ErrorCode::kInputTooLong, "q")), ApiFlavor::kOpenAi),
            400);
  EXPECT_EQ(http_status(from_status(Status(ErrorCode::kDeviceError, "q")), ApiFlavor::kTei), 500);
  EXPECT_EQ(http_status(from_status(Status(ErrorCode::kUnavailable, "q")), ApiFlavor::kTei), 503);
}

TEST(Policy, Priority) {
  EXPECT_EQ(parse_priority("Query"), std::optional<Priority>(Priority::kQuery));
  EXPECT_EQ(parse_priority("interactive"), std::optional<Priority>(Priority::kInteractive));
  EXPECT_EQ(parse_priority("BATCH"), std::optional<Priority>(Priority::kBatch));
  EXPECT_FALSE(parse_priority("high").has_value());
  EXPECT_EQ(default_priority(1, 40), Priority::kQuery);
  EXPECT_EQ(default_priority(4, 400), Priority::kInteractive);
  EXPECT_EQ(default_priority(32, 4000), Priority::kBatch);
  EXPECT_EQ(default_priority(1, 100000), Priority::kBatch);
}

TEST(Policy, AdmissionCountsInputs) {
  Admission a(10);
  EXPECT_TRUE(a.try_acquire(6));
  EXPECT_FALSE(a.try_acquire(5));
  EXPECT_TRUE(a.try_acquire(4));
  EXPECT_FALSE(a.try_acquire(1));
  a.release(6);
  EXPECT_EQ(a.used(), 4u);
  EXPECT_FALSE(a.try_acquire(11));
}

TEST(Policy, TokenBoundAndCharacters) {
  EXPECT_EQ(token_upper_bound(10, 2, 512, false), 12u);
  EXPECT_EQ(token_upper_bound(1000, 2, 512, true), 512u);
  EXPECT_EQ(token_upper_bound(1000, 2, 512, false), 1002u);
  EXPECT_EQ(count_characters("h\xc3\xa9llo \xe4\xb8\xad"), 7u);
}

}  // namespace
}  // namespace embd::server
