// The whole server from outside: `embd serve`'s routes over real HTTP on 127.0.0.1, with the
// tiny-jina fixture on the CPU behind them. Input: one byte that picks the form, then bytes:
//   0: the bytes as they are, as raw HTTP (request lines, headers, framing, pipelining);
//   1-3: a well-framed POST of the bytes as the body of /embed, /v1/embeddings or /tokenize.
// The client half-closes after sending and reads every response until the server closes.
// Checks: nothing in the server crashes or trips a sanitizer; the server answers (or closes)
// within the deadline; no response is a 500 (a client can only cause 4xx), a framed POST gets
// exactly one response and a 200 carries valid JSON; and after every input the server still
// embeds a normal request correctly.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "embd/engine.hpp"
#include "fuzz_check.h"
#include "server/server.h"
#include "server/test_client.h"

namespace {

using namespace embd;
using namespace embd::server;
using testing::Connection;

constexpr auto kDeadline = std::chrono::seconds(20);

struct Fixture {
  std::unique_ptr<Server> server;
  std::string normal_request;
  std::uint16_t port = 0;
};

Fixture& fixture() {
  static Fixture f = [] {
    Fixture out;
    LoadOptions lo;
    lo.threads = 1;
    lo.max_length = 512;
    auto engine = Engine::load(EMBD_FIXTURES_DIR "/models/tiny-jina", lo);
    FUZZ_CHECK(engine.ok(), "cannot load tiny-jina: %s", engine.status().to_string().c_str());
    ServerOptions so;
    so.host = "127.0.0.1";
    so.port = 0;
    so.io_threads = 2;
    so.workers = 2;
    so.payload_limit = 64u << 10;  // the 413 path within the inputs' sizes
    auto server = Server::start(so);
    FUZZ_CHECK(server.ok(), "cannot start the server: %s", server.status().to_string().c_str());
    out.server = std::move(server).value();
    out.server->set_engine(std::shared_ptr<Engine>(std::move(engine).value()));
    out.port = out.server->port();
    out.normal_request = testing::make_request("POST", "/embed", R"({"inputs": ["a normal request", "two"]})");
    return out;
  }();
  return f;
}

struct Outcome {
  std::vector<testing::RawResponse> responses;
  bool sent = false;
  bool closed = false;  // the server closed the connection before the deadline
};

// Every response on the connection until the server closes it. Raw bytes are followed by a FIN,
// so that a request cut short ends at once instead of at the read timeout; a framed request
// asks for `Connection: close` instead, as the server takes EOF while it works as the client
// having left (it then cancels the work and may answer nothing).
Outcome exchange(std::uint16_t port, std::string_view bytes, bool half_close) {
  Outcome out;
  Connection c(port);
  FUZZ_CHECK(c.connected(), "cannot connect to the server");
  out.sent = c.send_all(bytes);
  if (!out.sent) return out;  // the server closed early (e.g. after a 413): fine
  if (half_close) c.shutdown_write();
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  const auto left = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  };
  while (auto r = c.read_response(left())) out.responses.push_back(std::move(*r));
  out.closed = left().count() > 0 && c.closed_by_peer(left());
  return out;
}

void check_alive(const Fixture& f) {
  Connection c(f.port);
  FUZZ_CHECK(c.connected() && c.send_all(f.normal_request), "the server stopped accepting");
  const auto sent = std::chrono::steady_clock::now();
  auto r = c.read_response(kDeadline);
  FUZZ_CHECK(r.has_value(), "the server did not answer a normal request (gave up after %.3f s; closed: %d)",
             std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count(),
             c.closed_by_peer(std::chrono::milliseconds(100)));
  FUZZ_CHECK(r->status == 200, "a normal request got %d: %s", r->status, r->body.c_str());
  simdjson::dom::parser parser;
  simdjson::padded_string body(r->body);
  simdjson::dom::array rows;
  FUZZ_CHECK(!parser.parse(body).get(rows) && rows.size() == 2, "a normal request got %s",
             r->body.c_str());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  Fixture& f = fixture();
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  static constexpr const char* kRoutes[] = {"/embed", "/v1/embeddings", "/tokenize"};
  const int form = data[0] % 4;
  const std::string bytes =
      form == 0 ? std::string(rest)
                : testing::make_request("POST", kRoutes[form - 1], rest, {}, /*keep_alive=*/false);
  const Outcome out = exchange(f.port, bytes, form == 0);
  FUZZ_CHECK(!out.sent || out.closed, "no close within %lld s (%zu responses)",
             static_cast<long long>(kDeadline.count()), out.responses.size());
  for (const auto& r : out.responses) {
    FUZZ_CHECK(r.status != 500, "a client caused a 500: %s", r.body.c_str());
    FUZZ_CHECK(r.status >= 100 && r.status < 600, "status %d", r.status);  // 100 for Expect
    if (r.status == 200 && r.header("content-type").find("json") != std::string::npos) {
      simdjson::dom::parser parser;
      simdjson::padded_string body(r.body);
      FUZZ_CHECK(!parser.parse(body).error(), "a 200 with invalid JSON: %.200s", r.body.c_str());
    }
  }
  if (form != 0 && out.sent) {
    FUZZ_CHECK(out.responses.size() == 1, "%zu responses to one request", out.responses.size());
  }
  check_alive(f);
  return 0;
}
