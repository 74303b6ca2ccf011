// API errors of the HTTP server and how each route family renders them.
//
// An ApiError is a value: what went wrong (Kind), a message naming the field or input at fault,
// and optionally the request field (`param`). The HTTP status depends on the route family: TEI
// routes answer validation errors with 422, OpenAI routes with 400 (research/peers.md §4). TEI
// bodies are {"error": msg, "error_type": Variant}; OpenAI bodies are nested
// {"error": {message, type, param, code}}. Engine failures (embd::Status) map through
// from_status(); user errors never map to a 5xx. Pure functions: thread-safe, never throw.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "embd/status.hpp"

namespace embd::server {

enum class ApiFlavor { kTei, kOpenAi };

struct ApiError {
  enum class Kind {
    kMalformed,        // body is not JSON / not UTF-8 (400)
    kValidation,       // wrong type or value of a field (422 TEI, 400 OpenAI)
    kEmpty,            // empty string or empty list (400)
    kTooLong,          // input longer than the model maximum, truncation off (422 / 400)
    kTooLarge,         // too many inputs or tokens in one request (422 / 400)
    kPayloadTooLarge,  // body over --payload-limit (413)
    kUnauthorized,     // missing or wrong API key (401)
    kNotFound,         // unknown route (404)
    kMethodNotAllowed, // known route, wrong method (405)
    kOverloaded,       // admission limit or engine back-pressure (429)
    kCancelled,        // client went away (499)
    kUnavailable,      // not loaded yet / shutting down / out of memory (503)
    kTimeout,          // deadline passed before the work ran (504)
    kBackend,          // an engine failure that is not the client's fault (500)
  };
  Kind kind = Kind::kValidation;
  std::string message;
  std::string param;  // request field at fault, "" when none
};

ApiError make_error(ApiError::Kind kind, std::string message, std::string param = {});

// The HTTP status for an error on a route of the given family.
int http_status(const ApiError& error, ApiFlavor flavor);
// The JSON body for an error on a route of the given family.
std::string error_body(const ApiError& error, ApiFlavor flavor);
// Maps an engine failure. `param` names the request field the engine was working on.
ApiError from_status(const Status& status, std::string param = {});

// A value or an ApiError (the server's internal Result).
template <typename T>
class ApiResult {
 public:
  ApiResult(T value) : data_(std::move(value)) {}        // NOLINT: implicit by design
  ApiResult(ApiError error) : data_(std::move(error)) {}  // NOLINT
  bool ok() const { return std::holds_alternative<T>(data_); }
  T& value() { return std::get<T>(data_); }
  const T& value() const { return std::get<T>(data_); }
  const ApiError& error() const { return std::get<ApiError>(data_); }

 private:
  std::variant<T, ApiError> data_;
};

}  // namespace embd::server
