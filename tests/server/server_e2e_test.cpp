// End-to-end: the real server with the tiny-jina fixture over 127.0.0.1 on an ephemeral port.
// Every route's vectors must equal the library's (Engine::embed on the same texts); every error
// must carry its status and body shape; misbehaving clients must not disturb the others.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "embd/engine.hpp"
#include "server/server.h"
#include "test_client.h"

namespace embd::server {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::Connection;
using testing::make_request;
using testing::RawResponse;

const std::string kModel = std::string(EMBD_FIXTURES_DIR) + "/models/tiny-jina";
constexpr std::size_t kMaxLength = 64;  // loaded with a short maximum so "too long" is cheap

// CPU kernel threads: 2, or EMBD_TEST_THREADS (the ThreadSanitizer run uses 1: libgomp is not
// instrumented, see tests/engine/engine_test.cpp).
int test_threads() {
  const char* env = std::getenv("EMBD_TEST_THREADS");
  return env ? std::atoi(env) : 2;
}

std::shared_ptr<Engine> shared_engine(std::size_t max_queued_tokens = 0) {
  LoadOptions o;
  o.threads = test_threads();
  o.max_length = kMaxLength;
  if (max_queued_tokens) o.max_queued_tokens = max_queued_tokens;
  auto engine = Engine::load(kModel, o);
  EXPECT_TRUE(engine.ok()) << engine.status().to_string();
  return engine.ok() ? std::shared_ptr<Engine>(std::move(engine).value()) : nullptr;
}

std::unique_ptr<Server> start_server(std::shared_ptr<Engine> engine, ServerOptions o = {}) {
  o.host = "127.0.0.1";
  o.port = 0;
  auto server = Server::start(o);
  EXPECT_TRUE(server.ok()) << server.status().to_string();
  if (!server.ok()) return nullptr;
  if (engine) (*server)->set_engine(std::move(engine));
  return std::move(server).value();
}

RawResponse post(std::uint16_t port, std::string_view path, std::string_view body,
                 std::string_view headers = {}) {
  auto r = testing::request(port, "POST", path, body, headers);
  EXPECT_TRUE(r.has_value()) << path << " " << body.substr(0, 200);
  return r.value_or(RawResponse{});
}

Embeddings library(Engine& engine, std::vector<std::string> texts, EmbedOptions o = {}) {
  auto r = engine.embed(std::move(texts), o).get();
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? std::move(r).value() : Embeddings{};
}

void expect_rows_near(const std::vector<std::vector<float>>& got, const Embeddings& want) {
  ASSERT_EQ(got.size(), want.rows);
  for (std::size_t i = 0; i < want.rows; ++i) {
    ASSERT_EQ(got[i].size(), want.dim) << "row " << i;
    for (std::size_t j = 0; j < want.dim; ++j) {
      EXPECT_NEAR(got[i][j], want.row(i)[j], 1e-5f) << "row " << i << " col " << j;
    }
  }
}

std::vector<float> decode_base64_floats(const std::string& text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
  };
  std::vector<std::uint8_t> bytes;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '=') break;
    int v = value(c);
    if (v < 0) return {};
    acc = (acc << 6) | std::uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back(std::uint8_t(acc >> bits));
    }
  }
  std::vector<float> out(bytes.size() / 4);
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::uint32_t u = bytes[4 * i] | bytes[4 * i + 1] << 8 | bytes[4 * i + 2] << 16 |
                      std::uint32_t(bytes[4 * i + 3]) << 24;
    std::memcpy(&out[i], &u, 4);
  }
  return out;
}

void expect_tei_error(const RawResponse& r, int status, const std::string& type = "") {
  EXPECT_EQ(r.status, status) << r.body;
  json j = json::parse(r.body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.body;
  EXPECT_TRUE(j["error"].is_string()) << r.body;
  EXPECT_TRUE(j["error_type"].is_string()) << r.body;
  if (!type.empty()) {
    EXPECT_EQ(j["error_type"], type) << r.body;
  }
}

void expect_openai_error(const RawResponse& r, int status) {
  EXPECT_EQ(r.status, status) << r.body;
  json j = json::parse(r.body, nullptr, false);
  ASSERT_TRUE(j.is_object() && j["error"].is_object()) << r.body;
  EXPECT_TRUE(j["error"]["message"].is_string()) << r.body;
  EXPECT_TRUE(j["error"]["type"].is_string()) << r.body;
  EXPECT_TRUE(j["error"].contains("param")) << r.body;
  EXPECT_TRUE(j["error"].contains("code")) << r.body;
}

std::string words(std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += i ? " word" : "word";
  return s;
}

class ServerE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { engine_ = shared_engine(); }
  static void TearDownTestSuite() { engine_.reset(); }
  void SetUp() override {
    ASSERT_TRUE(engine_);
    ServerOptions o;
    o.max_client_batch_size = 8;
    o.max_request_tokens = 300;
    o.payload_limit = 1u << 20;
    server_ = start_server(engine_, o);
    ASSERT_TRUE(server_);
    port_ = server_->port();
  }
  void expect_healthy_and_serving() {
    auto h = testing::request(port_, "GET", "/health");
    ASSERT_TRUE(h.has_value());
    EXPECT_EQ(h->status, 200);
    auto r = post(port_, "/embed", R"({"inputs": "still here"})");
    ASSERT_EQ(r.status, 200) << r.body;
    expect_rows_near(json::parse(r.body).get<std::vector<std::vector<float>>>(),
                     library(*engine_, {"still here"}));
  }

  static std::shared_ptr<Engine> engine_;
  std::unique_ptr<Server> server_;
  std::uint16_t port_ = 0;
};
std::shared_ptr<Engine> ServerE2E::engine_;

const std::vector<std::string> kTexts = {"What is Deep Learning?", "hello world",
                                         "Ünïcödé tëxt 中文 and emoji \xF0\x9F\x98\x80"};

TEST_F(ServerE2E, TeiEmbedMatchesLibrary) {
  auto r = post(port_, "/embed", json{{"inputs", kTexts}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  auto want = library(*engine_, kTexts);
  expect_rows_near(json::parse(r.body).get<std::vector<std::vector<float>>>(), want);
  std::uint64_t tokens = 0;
  for (auto t : want.token_counts) tokens += t;
  EXPECT_EQ(r.header("x-compute-tokens"), std::to_string(tokens));
  EXPECT_EQ(r.header("content-type"), "application/json");
  for (const char* h : {"x-compute-type", "x-compute-time", "x-compute-characters", "x-total-time",
                        "x-tokenization-time", "x-queue-time", "x-inference-time"}) {
    EXPECT_FALSE(r.header(h).empty()) << h;
  }

  auto single = post(port_, "/embed", R"({"inputs": "hello world"})");
  ASSERT_EQ(single.status, 200);
  expect_rows_near(json::parse(single.body).get<std::vector<std::vector<float>>>(),
                   library(*engine_, {"hello world"}));
}

TEST_F(ServerE2E, TeiOptionsMatchLibrary) {
  EmbedOptions raw;
  raw.normalize = false;
  auto r = post(port_, "/embed", R"({"inputs": ["hello world"], "normalize": false})");
  ASSERT_EQ(r.status, 200) << r.body;
  expect_rows_near(json::parse(r.body).get<std::vector<std::vector<float>>>(),
                   library(*engine_, {"hello world"}, raw));

  EmbedOptions dims;
  dims.dimensions = 16;
  r = post(port_, "/embed", R"({"inputs": ["hello world"], "dimensions": 16})");
  ASSERT_EQ(r.status, 200) << r.body;
  expect_rows_near(json::parse(r.body).get<std::vector<std::vector<float>>>(),
                   library(*engine_, {"hello world"}, dims));

  for (const char* dir : {"Left", "right"}) {
    EmbedOptions t;
    t.truncate = true;
    t.truncation_direction = dir[0] == 'L' ? TruncationDirection::kLeft : TruncationDirection::kRight;
    const std::string text = "alpha beta " + words(100);
    r = post(port_, "/embed",
             json{{"inputs", text}, {"truncate", true}, {"truncation_direction", dir}}.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    expect_rows_near(json::parse(r.body).get<std::vector<std::vector<float>>>(),
                     library(*engine_, {text}, t));
    EXPECT_EQ(r.header("x-compute-tokens"), std::to_string(kMaxLength));
  }
}

TEST_F(ServerE2E, OpenAiFloatAndBase64MatchLibrary) {
  auto want = library(*engine_, kTexts);
  for (const char* path : {"/v1/embeddings", "/embeddings"}) {
    auto r = post(port_, path, json{{"input", kTexts}, {"model", "whatever"}}.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    json j = json::parse(r.body);
    EXPECT_EQ(j["object"], "list");
    EXPECT_EQ(j["model"], engine_->info().model_id);
    std::vector<std::vector<float>> rows;
    for (std::size_t i = 0; i < j["data"].size(); ++i) {
      EXPECT_EQ(j["data"][i]["object"], "embedding");
      EXPECT_EQ(j["data"][i]["index"], i);
      rows.push_back(j["data"][i]["embedding"].get<std::vector<float>>());
    }
    expect_rows_near(rows, want);
    std::uint64_t tokens = 0;
    for (auto t : want.token_counts) tokens += t;
    EXPECT_EQ(j["usage"]["prompt_tokens"], tokens);
    EXPECT_EQ(j["usage"]["total_tokens"], tokens);
  }
  auto b = post(port_, "/v1/embeddings",
                json{{"input", kTexts}, {"encoding_format", "base64"}}.dump());
  ASSERT_EQ(b.status, 200) << b.body;
  json j = json::parse(b.body);
  std::vector<std::vector<float>> rows;
  for (const auto& d : j["data"]) rows.push_back(decode_base64_floats(d["embedding"]));
  expect_rows_near(rows, want);
}

TEST_F(ServerE2E, TokenIdInputsMatchTextInputs) {
  auto ids = engine_->tokenize(kTexts);
  ASSERT_TRUE(ids.ok());
  auto want = library(*engine_, kTexts);
  auto r = post(port_, "/v1/embeddings", json{{"input", *ids}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json parsed = json::parse(r.body);
  std::vector<std::vector<float>> rows;
  for (const auto& d : parsed["data"]) rows.push_back(d["embedding"].get<std::vector<float>>());
  expect_rows_near(rows, want);
  auto one = post(port_, "/embed", json{{"inputs", (*ids)[1]}}.dump());
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_NEAR(json::parse(one.body)[0][0].get<float>(), want.row(1)[0], 1e-5f);
  auto bad = post(port_, "/v1/embeddings", R"({"input": [[101, 999999, 102]]})");
  expect_openai_error(bad, 400);
}

// As TEI: specials show their vocabulary string and null offsets; other tokens the bytes of the
// input they came from (original case, continuations without ##) and those bytes' offsets.
TEST_F(ServerE2E, Tokenize) {
  const std::string text = "Hello  WORLD, héllo";
  auto ids = engine_->tokenize({text});
  ASSERT_TRUE(ids.ok());
  auto r = post(port_, "/tokenize", json{{"inputs", text}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  ASSERT_EQ(j.size(), 1u);
  ASSERT_EQ(j[0].size(), (*ids)[0].size());
  auto strings = engine_->id_to_tokens((*ids)[0]);
  std::size_t covered = 0;
  for (std::size_t k = 0; k < j[0].size(); ++k) {
    const json& t = j[0][k];
    EXPECT_EQ(t["id"], (*ids)[0][k]);
    const bool special = k == 0 || k + 1 == j[0].size();
    EXPECT_EQ(t["special"], special);
    if (special) {
      EXPECT_EQ(t["text"], strings[k]);
      EXPECT_TRUE(t["start"].is_null() && t["stop"].is_null()) << t.dump();
      continue;
    }
    const auto start = t["start"].get<std::size_t>(), stop = t["stop"].get<std::size_t>();
    ASSERT_LT(start, stop);
    ASSERT_LE(stop, text.size());
    EXPECT_GE(start, covered) << t.dump();
    covered = stop;
    EXPECT_EQ(t["text"], text.substr(start, stop - start)) << t.dump();
  }
  EXPECT_EQ(j[0][1]["text"], text.substr(0, j[0][1]["stop"].get<std::size_t>()));  // "Hello..."
  EXPECT_EQ(covered, text.size());  // the last token ends the text ("héllo" or its last piece)
  auto plain = post(port_, "/tokenize", R"({"inputs": ["hello world"], "add_special_tokens": false})");
  ASSERT_EQ(plain.status, 200);
  auto plain_ids = engine_->tokenize({"hello world"});
  ASSERT_TRUE(plain_ids.ok());
  const json p = json::parse(plain.body)[0];
  ASSERT_EQ(p.size(), (*plain_ids)[0].size() - 2);
  EXPECT_EQ(p[0]["start"], 0);
  EXPECT_EQ(p[0]["special"], false);
}

TEST_F(ServerE2E, InfoHealthMetrics) {
  auto info = testing::request(port_, "GET", "/info");
  ASSERT_TRUE(info && info->status == 200);
  json j = json::parse(info->body);
  EXPECT_EQ(j["model_id"], engine_->info().model_id);
  EXPECT_EQ(j["max_input_length"], kMaxLength);
  EXPECT_EQ(j["max_client_batch_size"], 8);
  EXPECT_EQ(j["model_type"]["embedding"]["pooling"], engine_->info().pooling);
  EXPECT_EQ(j["query_lanes"], engine_->info().query_lanes);  // 0 on the CPU
  EXPECT_EQ(j["concurrent_batches"], 1);  // the CPU runs one batch at a time
  post(port_, "/embed", R"({"inputs": "count me"})");
  post(port_, "/embed", R"({"inputs": ""})");
  auto m = testing::request(port_, "GET", "/metrics");
  ASSERT_TRUE(m && m->status == 200);
  EXPECT_NE(m->header("content-type").find("text/plain"), std::string::npos);
  for (const char* name : {"te_request_count 2", "te_request_success 1",
                           "te_request_failure{err=\"empty\"} 1", "te_queue_size ",
                           "te_request_duration_bucket{le=\"+Inf\"} 1", "te_batch_tokens_count",
                           "te_inference_duration_bucket", "te_queue_duration_bucket"}) {
    EXPECT_NE(m->body.find(name), std::string::npos) << name << "\n" << m->body;
  }
  for (const char* path : {"/health", "/", "/ping"}) {
    auto h = testing::request(port_, "GET", path);
    ASSERT_TRUE(h);
    EXPECT_EQ(h->status, 200) << path;
  }
}

TEST(ServerLifecycle, HealthIs503UntilTheModelIsSet) {
  auto server = start_server(nullptr);
  ASSERT_TRUE(server);
  auto h = testing::request(server->port(), "GET", "/health");
  ASSERT_TRUE(h);
  expect_tei_error(*h, 503, "Unhealthy");
  expect_tei_error(post(server->port(), "/embed", R"({"inputs": "x"})"), 503);
  server->set_engine(shared_engine());
  h = testing::request(server->port(), "GET", "/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
}

struct ErrorCase {
  const char* name;
  std::string body;
  int tei_status;
  int openai_status;
};

TEST_F(ServerE2E, ErrorStatusesAndShapes) {
  const std::string too_long = words(kMaxLength + 10);
  const std::string nine = json{{"x", std::vector<std::string>(9, "a")}}["x"].dump();
  const std::string long_list = json(std::vector<std::string>(6, words(60))).dump();
  const ErrorCase cases[] = {
      {"malformed", "{\"inputs\": ", 400, 400},
      {"not an object", "[1, 2]", 422, 400},
      {"wrong type", "{\"inputs\": 5, \"input\": 5}", 422, 400},
      {"empty string", "{\"inputs\": \"\", \"input\": \"\"}", 400, 400},
      {"empty list", "{\"inputs\": [], \"input\": []}", 400, 400},
      {"too many inputs", "{\"inputs\": " + nine + ", \"input\": " + nine + "}", 422, 400},
      {"too long", json{{"inputs", too_long}, {"input", too_long}}.dump(), 422, 400},
      {"too many tokens", "{\"inputs\": " + long_list + ", \"input\": " + long_list + "}", 422, 400},
      {"dimensions too big", "{\"inputs\": \"a\", \"input\": \"a\", \"dimensions\": 65}", 422, 400},
      {"huge number", "{\"inputs\": \"a\", \"input\": \"a\", \"dimensions\": 1e999}", 422, 400},
      {"huge integer", "{\"inputs\": \"a\", \"input\": \"a\", \"dimensions\": 99999999999999999999999}", 422, 400},
      {"invalid utf-8", "{\"inputs\": \"\xC3\x28\", \"input\": \"\xC3\x28\"}", 400, 400},
      {"bad priority", "{\"inputs\": \"a\", \"input\": \"a\", \"priority\": \"now\"}", 422, 400},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    expect_tei_error(post(port_, "/embed", c.body), c.tei_status);
    expect_openai_error(post(port_, "/v1/embeddings", c.body), c.openai_status);
  }
  expect_tei_error(post(port_, "/embed", R"({"inputs": "a"})", "x-priority: urgent\r\n"), 422);
  auto ok = post(port_, "/embed", json{{"inputs", too_long}, {"truncate", true}}.dump());
  EXPECT_EQ(ok.status, 200) << ok.body;
  expect_tei_error(*testing::request(port_, "GET", "/nope"), 404);
  expect_tei_error(*testing::request(port_, "GET", "/embed"), 405);
  expect_healthy_and_serving();
}

TEST_F(ServerE2E, TenMegabyteBodyIs413) {
  std::string body = "{\"inputs\": \"" + std::string(10u << 20, 'a') + "\"}";
  Connection c(port_);
  c.send_all(make_request("POST", "/embed", body));
  auto r = c.read_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 413);
  Connection o(port_);
  o.send_all(make_request("POST", "/v1/embeddings", body));
  auto r2 = o.read_response();
  ASSERT_TRUE(r2.has_value());
  expect_openai_error(*r2, 413);
  expect_healthy_and_serving();
}

// Large results are encoded in pieces on several workers (ServerOptions::encode_piece_floats,
// small here): every route and encoding gives the library's rows in order, also with several
// clients at once.
TEST(ServerLargeResults, EncodedInPiecesMatchLibrary) {
  ServerOptions o;
  o.max_client_batch_size = 32;
  o.workers = 4;
  o.encode_piece_floats = 64;
  auto engine = shared_engine();
  auto server = start_server(engine, o);
  ASSERT_TRUE(server);
  std::vector<std::string> texts;
  for (int i = 0; i < 20; ++i) texts.push_back(words(3 + i) + " " + std::to_string(i));
  const auto want = library(*engine, texts);
  ASSERT_GT(want.data.size(), 1024u);  // above the inline-encoding size: the pieces path
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      for (int round = 0; round < 3; ++round) {
        auto tei = post(server->port(), "/embed", json{{"inputs", texts}}.dump());
        ASSERT_EQ(tei.status, 200) << tei.body;
        expect_rows_near(json::parse(tei.body).get<std::vector<std::vector<float>>>(), want);
        const bool base64 = (c + round) % 2;
        json req{{"input", texts}};
        if (base64) req["encoding_format"] = "base64";
        auto oa = post(server->port(), "/v1/embeddings", req.dump());
        ASSERT_EQ(oa.status, 200) << oa.body;
        const json j = json::parse(oa.body);
        std::vector<std::vector<float>> rows;
        for (std::size_t i = 0; i < j["data"].size(); ++i) {
          ASSERT_EQ(j["data"][i]["index"], i);
          rows.push_back(base64 ? decode_base64_floats(j["data"][i]["embedding"])
                                : j["data"][i]["embedding"].get<std::vector<float>>());
        }
        expect_rows_near(rows, want);
      }
    });
  }
  for (auto& t : clients) t.join();
}

TEST(ServerAuth, BearerApiKey) {
  ServerOptions o;
  o.api_key = "s3cret";
  auto server = start_server(shared_engine(), o);
  ASSERT_TRUE(server);
  const auto port = server->port();
  expect_tei_error(post(port, "/embed", R"({"inputs": "a"})"), 401, "Unauthorized");
  expect_openai_error(post(port, "/v1/embeddings", R"({"input": "a"})", "Authorization: Bearer nope\r\n"), 401);
  EXPECT_EQ(post(port, "/embed", R"({"inputs": "a"})", "Authorization: Bearer s3cret\r\n").status, 200);
  auto h = testing::request(port, "GET", "/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
}

// Overload comes from the admission permits (--max-concurrent-requests, per input) and from
// the engine's queue bound; 32 concurrent clients, each needing all permits, overload both.
// Every answer must be 200 or a well-formed 429 with Retry-After, and 429s must occur.
TEST(ServerOverload, ConcurrentFloodGets429WithRetryAfter) {
  ServerOptions o;
  o.max_concurrent_requests = 16;
  o.max_client_batch_size = 16;
  auto server = start_server(shared_engine(/*max_queued_tokens=*/1100), o);
  ASSERT_TRUE(server);
  const std::string body = json{{"inputs", std::vector<std::string>(16, words(60))}}.dump();
  std::atomic<int> ok{0}, overloaded{0}, other{0};
  for (int round = 0; round < 3 && overloaded.load() == 0; ++round) {
    std::vector<std::thread> clients;
    for (int i = 0; i < 32; ++i) {
      clients.emplace_back([&, i] {
        const bool openai = i % 2;
        auto r = testing::request(server->port(), "POST", openai ? "/v1/embeddings" : "/embed",
                                  openai ? json{{"input", json::parse(body)["inputs"]}}.dump() : body);
        if (r && r->status == 200) {
          ++ok;
        } else if (r && r->status == 429 && !r->header("retry-after").empty()) {
          json j = json::parse(r->body, nullptr, false);
          const bool shaped = openai ? j["error"]["type"] == "rate_limit_exceeded"
                                     : j["error_type"] == "Overloaded";
          shaped ? ++overloaded : ++other;
        } else {
          ++other;
        }
      });
    }
    for (auto& t : clients) t.join();
  }
  EXPECT_GT(overloaded.load(), 0);
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(other.load(), 0);
}

TEST_F(ServerE2E, ClientDisconnectMidRequestDoesNotDisturbOthers) {
  std::vector<std::thread> clients;
  std::atomic<int> good{0};
  auto want = library(*engine_, kTexts);
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&, i] {
      Connection c(port_);
      const std::string body = json{{"inputs", kTexts}}.dump();
      if (i % 2 == 0) {  // send and vanish (half of them abruptly)
        c.send_all(make_request("POST", "/embed", body));
        if (i % 4 == 0) c.reset(); else c.close();
        return;
      }
      c.send_all(make_request("POST", "/embed", body));
      auto r = c.read_response();
      if (!r || r->status != 200) return;
      auto rows = json::parse(r->body).get<std::vector<std::vector<float>>>();
      bool same = rows.size() == want.rows;
      for (std::size_t k = 0; same && k < rows.size(); ++k) {
        for (std::size_t d = 0; d < want.dim; ++d) same &= std::fabs(rows[k][d] - want.row(k)[d]) < 1e-5f;
      }
      good += same;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(good.load(), 4);
  expect_healthy_and_serving();
}

TEST_F(ServerE2E, SlowClientManyIdleConnectionsAndGarbage) {
  std::vector<Connection> idle;
  for (int i = 0; i < 200; ++i) idle.emplace_back(port_);
  std::thread slow([&] {
    Connection c(port_);
    for (char ch : make_request("POST", "/embed", R"({"inputs": "slow"})")) {
      c.send_all(std::string_view(&ch, 1));
      std::this_thread::sleep_for(1ms);
    }
    auto r = c.read_response();
    EXPECT_TRUE(r && r->status == 200);
  });
  for (const char* garbage : {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
                              "POST /embed HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                              "GET / HTTP/1.1\r\nHost: a\r\n\xff\xfe: x\r\n\r\n"}) {
    Connection c(port_);
    c.send_all(garbage);
    auto r = c.read_response(10s);
    ASSERT_TRUE(r.has_value()) << garbage;
    EXPECT_EQ(r->status, 400);
  }
  expect_healthy_and_serving();
  slow.join();
  ASSERT_TRUE(idle[100].send_all(make_request("POST", "/embed", R"({"inputs": "idle"})")));
  auto r = idle[100].read_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
}

TEST_F(ServerE2E, KeepAliveManyRequestsOnOneConnection) {
  // Many back-to-back requests: a stale readiness edge must never look like a disconnect (499).
  Connection c(port_);
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(c.send_all(make_request("POST", "/embed", R"({"inputs": ["a", "b"]})")));
    auto r = c.read_response();
    ASSERT_TRUE(r.has_value()) << i;
    EXPECT_EQ(r->status, 200);
  }
}

TEST_F(ServerE2E, GracefulShutdownFinishesAcceptedRequests) {
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  std::vector<Connection> conns;
  for (int i = 0; i < 4; ++i) {
    conns.emplace_back(port_);
    conns.back().send_all(make_request("POST", "/embed", json{{"inputs", kTexts}}.dump()));
  }
  std::this_thread::sleep_for(50ms);  // let the server read them (they are then "accepted")
  std::thread stopper([&] { server_->shutdown(); });
  for (auto& c : conns) {
    auto r = c.read_response();
    if (r && r->status == 200) ++ok;
  }
  stopper.join();
  EXPECT_EQ(ok.load(), 4);
  Connection after(port_);
  EXPECT_FALSE(after.connected() && after.send_all(make_request("GET", "/health")) &&
               after.read_response(1s).has_value());
}

}  // namespace
}  // namespace embd::server
